/* version.h — the version h2steerd and h2steer report. */
#ifndef H2S_VERSION_H
#define H2S_VERSION_H

#define H2S_VERSION "0.1.0"

#endif /* H2S_VERSION_H */
