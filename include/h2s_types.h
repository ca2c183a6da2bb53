/* h2s_types.h — fixed-width types for code shared by BPF programs and the host.
 *
 * BPF units get them from the generated vmlinux.h (never mixed with linux/ headers);
 * host units get them from <linux/types.h>.
 */
#ifndef H2S_TYPES_H
#define H2S_TYPES_H

#if defined(__bpf__)
#include "vmlinux.h"
#else
#include <linux/types.h>
#endif

#ifndef AF_INET
#define AF_INET 2
#endif
#ifndef AF_INET6
#define AF_INET6 10
#endif

#endif /* H2S_TYPES_H */
