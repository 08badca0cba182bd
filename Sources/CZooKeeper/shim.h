#ifndef DS_CZOOKEEPER_SHIM_H
#define DS_CZOOKEEPER_SHIM_H
#define THREADED
#include <zookeeper/zookeeper.h>

/* Swift 6 refuses the mutable globals ZOO_OPEN_ACL_UNSAFE and ZOO_CREATOR_ALL_ACL; hand out their addresses instead. */
static inline struct ACL_vector *ds_open_acl_unsafe(void) { return &ZOO_OPEN_ACL_UNSAFE; }
/* All permissions for the identities the creating session authenticated as (scheme "auth"), none for anyone else. */
static inline struct ACL_vector *ds_creator_all_acl(void) { return &ZOO_CREATOR_ALL_ACL; }
#endif
