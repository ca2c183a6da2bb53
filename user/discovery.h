/* discovery.h — keeps resolvers and health checkers in step with the configuration: after every
 * registry reload, each service has the resolver its h2s_discovery entry names, and each backend
 * is health-checked exactly when a service it belongs to asks for it.
 */
#ifndef H2S_DISCOVERY_H
#define H2S_DISCOVERY_H

struct h2s_daemon;

/* Install the registry hooks (reload, service/backend gone, idle backend). */
void h2s_discovery_init(struct h2s_daemon *d);
/* Stop every resolver and health checker (daemon exit). */
void h2s_discovery_fini(struct h2s_daemon *d);

#endif /* H2S_DISCOVERY_H */
