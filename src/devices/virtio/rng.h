/* virtio entropy device (virtio 1.2 section 5.4). */
#ifndef WAFER_DEVICES_VIRTIO_RNG_H
#define WAFER_DEVICES_VIRTIO_RNG_H

#include <stddef.h>

#include "devices/virtio/virtio.h"

/* A new entropy device fed from the host's getrandom(); NULL and a message
 * in err on failure. Freed through ops->destroy. */
struct virtio_dev *virtio_rng_create(const struct guest_mem *mem, char *err, size_t errlen);

#endif
