/* outlier.c — see outlier.h. */
#include "outlier.h"

void h2s_outlier_cfg_default(struct h2s_outlier_cfg *c)
{
	*c = (struct h2s_outlier_cfg){
		.consecutive = 5,
		.base_ms = 10000,
		.max_ms = 300000,
		.connect_base_ms = 1000,
		.connect_max_ms = 30000,
		.max_percent = 50,
	};
}

static uint64_t doubling(uint32_t base, uint32_t max, uint32_t n)
{
	uint64_t t = base;

	while (n-- > 0 && t < max)
		t *= 2;
	return t < max ? t : max;
}

bool h2s_outlier_failure(struct h2s_outlier *o, const struct h2s_outlier_cfg *c, uint64_t now,
			 bool connect, bool may_eject)
{
	o->failures++;
	o->streak++;
	if (connect) {
		o->until_ms = now + doubling(c->connect_base_ms, c->connect_max_ms, o->ejections);
		o->reason = H2S_EJECT_CONNECT;
		o->since_ms = now;
		o->ejections++;
		return true;
	}
	if (!c->consecutive || o->streak < c->consecutive || !may_eject ||
	    h2s_outlier_ejected(o, now))
		return false;
	o->until_ms = now + doubling(c->base_ms, c->max_ms, o->ejections);
	o->reason = H2S_EJECT_OUTLIER;
	o->since_ms = now;
	o->ejections++;
	o->streak = 0; /* a fresh count after re-admission */
	return true;
}

void h2s_outlier_success(struct h2s_outlier *o)
{
	o->streak = 0;
	o->ejections = 0;
}

bool h2s_outlier_ejected(const struct h2s_outlier *o, uint64_t now)
{
	return o->until_ms > now;
}

bool h2s_outlier_would_eject(const struct h2s_outlier *o, const struct h2s_outlier_cfg *c)
{
	return c->consecutive && o->streak + 1 >= c->consecutive;
}

void h2s_outlier_readmit(struct h2s_outlier *o)
{
	o->until_ms = 0;
	o->streak = 0;
}
