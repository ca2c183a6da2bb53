/* clock.h — the two clocks of the project: CLOCK_MONOTONIC for every duration and deadline
 * (the clock bpf_ktime_get_ns() reads, so times the kernel writes compare with ours), and the
 * wall clock for timestamps people read.
 */
#ifndef H2S_CLOCK_H
#define H2S_CLOCK_H

#include <stdint.h>

uint64_t h2s_now_ns(void);
uint64_t h2s_now_ms(void);
/* Wall clock, unix seconds. */
double h2s_unix_now(void);

#endif /* H2S_CLOCK_H */
