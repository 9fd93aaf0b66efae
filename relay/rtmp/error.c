#include "error.h"

#include <string.h>

const char *kb_strerror(int err)
{
    switch (err) {
    case KB_EHANDSHAKE:
        return "invalid RTMP handshake";
    case KB_ECHUNK:
        return "malformed RTMP chunk";
    case KB_ETOOBIG:
        return "message larger than max_message_size";
    case KB_EAMF:
        return "malformed AMF0 data";
    case KB_ECMD:
        return "malformed command message";
    case KB_ECHUNKSIZE:
        return "chunk size out of range";
    case KB_ETOOMANY:
        return "too many chunk streams in flight";
    case KB_EVERSION:
        return "unsupported RTMP version";
    }
    if (err < 0 && err > -4096)
        return strerror(-err);
    return "unknown error";
}
