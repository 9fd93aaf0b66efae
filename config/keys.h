/* kebun: the table of configuration keys (internal to config/).
 *
 * One row per key: name, section, type, where the value lands, default,
 * range, doc line. The parser (config.c), the reference in docs/CONFIG.md
 * (kebun --config-reference) and the tests all read this one table.
 */
#ifndef KB_CONFIG_KEYS_H
#define KB_CONFIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* SEC_BROKEN: inside a section header already reported as wrong; its keys
 * are skipped quietly so one mistake gives one message. */
enum kb__conf_section { SEC_BROKEN = -1, SEC_NONE, SEC_SERVER, SEC_STREAM, SEC_HTTP };

enum kb__conf_type {
    T_STRING,
    T_UINT,
    T_SIZE,
    T_DURATION,
    T_BOOL,
    T_ENUM,
    T_LISTEN,
    T_KEY,
    T_PUSH,
    T_ADDR,   ///< one HOST:PORT, or `off`
    T_FILE,   ///< a path, read when the config is loaded (struct kb_conf_file)
};

struct kb__conf_key {
    const char *name;
    uint8_t sec;
    uint8_t type;
    uint8_t repeat;   ///< may appear several times
    size_t off;       ///< where the value lands in kb_config or kb_stream_conf
    const char *def;  ///< default, parsed like file text; NULL = required
    uint64_t min, max;
    const char *doc;
    const char *const *names; ///< T_ENUM: the accepted words, NULL-terminated
};

#define KB__CONF_MAX_KEYS 64 ///< room the parser keeps per section for "set on line N"

#define KiB 1024ull
#define MiB (1024ull * 1024)
#define GiB (1024ull * 1024 * 1024)

extern const struct kb__conf_key kb__conf_keys[];
extern const size_t kb__conf_nkeys;
extern const char *const kb__conf_type_names[];
extern const char *const kb__conf_level_names[];

#endif
