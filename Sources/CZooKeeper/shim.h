#ifndef DS_CZOOKEEPER_SHIM_H
#define DS_CZOOKEEPER_SHIM_H
#define THREADED
#include <zookeeper/zookeeper.h>

/* Swift 6 refuses the mutable global ZOO_OPEN_ACL_UNSAFE; hand out its address instead. */
static inline struct ACL_vector *ds_open_acl_unsafe(void) { return &ZOO_OPEN_ACL_UNSAFE; }
#endif
