/* System calls Swift cannot reach directly (prctl is variadic in C, and Swift imports no variadic
 * function). One function per use, each returning 0 or -1 with errno set. */
#ifndef DS_CSUPPORT_H
#define DS_CSUPPORT_H

/* Makes the calling process a child subreaper: orphaned descendants are reparented to it. */
int ds_become_child_subreaper(void);

#endif
