/* locality.c — see locality.h. */
#include "locality.h"

bool h2s_locality_applies(size_t usable, size_t total, uint32_t min_usable_percent)
{
	/* In 64 bits: a member count times 100 cannot wrap. */
	return usable > 0 && usable <= total &&
	       (uint64_t)usable * 100 >= (uint64_t)total * min_usable_percent;
}
