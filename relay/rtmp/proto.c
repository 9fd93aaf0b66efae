#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "caps.h"
#include "error.h"

void kb_proto_init(struct kb_proto *p, uint32_t max_message)
{
    memset(p, 0, sizeof(*p));
    kb_chunk_reader_init(&p->rd, max_message);
    p->out_chunk = KB_CHUNK_DEFAULT;
}

void kb_proto_free(struct kb_proto *p)
{
    kb_chunk_reader_free(&p->rd);
    kb_buf_free(&p->out);
}

int kb_proto_send(struct kb_proto *p, uint32_t csid, uint8_t type, uint32_t ts, uint32_t msid,
                  const uint8_t *payload, uint32_t len)
{
    struct kb_chunk_hdr h = {
        .csid = csid, .timestamp = ts, .len = len, .type = type, .stream_id = msid};
    return kb_chunk_append(&p->out, &h, payload, p->out_chunk);
}

static int send_u32(struct kb_proto *p, uint8_t type, uint32_t v)
{
    uint8_t b[4];
    kb_put_be32(b, v);
    return kb_proto_send(p, KB_CSID_CONTROL, type, 0, 0, b, 4);
}

int kb_proto_send_chunk_size(struct kb_proto *p, uint32_t size)
{
    if (size < 1 || size > KB_CHUNK_MAX)
        return KB_ECHUNKSIZE;
    int err = send_u32(p, KB_MSG_SET_CHUNK_SIZE, size);
    if (err == 0)
        p->out_chunk = size;
    return err;
}

int kb_proto_send_window_ack(struct kb_proto *p, uint32_t size)
{
    return send_u32(p, KB_MSG_WINDOW_ACK_SIZE, size);
}

int kb_proto_send_peer_bw(struct kb_proto *p, uint32_t size, uint8_t limit_type)
{
    uint8_t b[5];
    kb_put_be32(b, size);
    b[4] = limit_type;
    return kb_proto_send(p, KB_CSID_CONTROL, KB_MSG_SET_PEER_BW, 0, 0, b, 5);
}

int kb_proto_send_user_control(struct kb_proto *p, uint16_t event, uint32_t value)
{
    uint8_t b[6];
    kb_put_be16(b, event);
    kb_put_be32(b + 2, value);
    return kb_proto_send(p, KB_CSID_CONTROL, KB_MSG_USER_CONTROL, 0, 0, b, 6);
}

int kb_proto_send_buffer_length(struct kb_proto *p, uint32_t msid, uint32_t ms)
{
    uint8_t b[10];
    kb_put_be16(b, KB_UC_SET_BUFFER_LENGTH);
    kb_put_be32(b + 2, msid);
    kb_put_be32(b + 6, ms);
    return kb_proto_send(p, KB_CSID_CONTROL, KB_MSG_USER_CONTROL, 0, 0, b, 10);
}

/* A protocol control message too short for its fields. */
static int short_control(struct kb_proto *p, const struct kb_msg *m, const char *what,
                         uint32_t need)
{
    snprintf(p->rd.why, sizeof(p->rd.why), "%s message of %u bytes (it needs %u)", what, m->len,
             need);
    return KB_ECHUNK;
}

/* Handle a protocol control or ping message. Returns 1 when the message
 * should also reach the application, 0 when handled, negative on error. */
static int control(struct kb_proto *p, const struct kb_msg *m)
{
    switch (m->type) {
    case KB_MSG_SET_CHUNK_SIZE:
        if (m->len < 4)
            return short_control(p, m, "Set Chunk Size", 4);
        return kb_chunk_reader_set_chunk_size(&p->rd, kb_get_be32(m->data));
    case KB_MSG_ABORT:
        if (m->len < 4)
            return short_control(p, m, "Abort", 4);
        kb_chunk_reader_abort(&p->rd, kb_get_be32(m->data));
        return 0;
    case KB_MSG_ACK:
        if (m->len < 4)
            return short_control(p, m, "Acknowledgement", 4);
        p->peer_acked = kb_get_be32(m->data);
        return 0;
    case KB_MSG_WINDOW_ACK_SIZE:
        if (m->len < 4)
            return short_control(p, m, "Window Acknowledgement Size", 4);
        p->ack_window = kb_get_be32(m->data);
        return 0;
    case KB_MSG_SET_PEER_BW:
        if (m->len < 5)
            return short_control(p, m, "Set Peer Bandwidth", 5);
        p->peer_bw = kb_get_be32(m->data);
        return 0;
    case KB_MSG_USER_CONTROL: {
        if (m->len < 2)
            return short_control(p, m, "User Control", 2);
        uint16_t ev = (uint16_t)kb_get_be16(m->data);
        if (ev == KB_UC_PING_REQUEST && m->len >= 6)
            return kb_proto_send_user_control(p, KB_UC_PING_RESPONSE, kb_get_be32(m->data + 2));
        if (ev == KB_UC_PING_RESPONSE && m->len >= 6) {
            p->last_ping = kb_get_be32(m->data + 2);
            return 0;
        }
        if (ev == KB_UC_SET_BUFFER_LENGTH && m->len >= 10)
            p->buffer_ms = kb_get_be32(m->data + 6);
        return 1;
    }
    }
    return 1;
}

const char *kb_proto_why(const struct kb_proto *p)
{
    return p->rd.why;
}

int kb_proto_read(struct kb_proto *p, const uint8_t *buf, size_t n, size_t *used,
                  struct kb_msg **out)
{
    size_t pos = 0;
    int ret;

    *out = NULL;
    for (;;) {
        size_t u = 0;
        struct kb_msg *m;
        ret = kb_chunk_read(&p->rd, buf + pos, n - pos, &u, &m);
        pos += u;
        p->in_bytes += u;
        /* Acknowledge once the peer's window is reached, as the spec asks;
         * the sequence number is the byte count modulo 2^32. */
        if (p->ack_window && p->in_bytes - p->in_acked >= p->ack_window) {
            int err = send_u32(p, KB_MSG_ACK, (uint32_t)p->in_bytes);
            if (err < 0) {
                if (ret == 1)
                    kb_msg_unref(m);
                ret = err;
                break;
            }
            p->in_acked = p->in_bytes;
        }
        if (ret <= 0)
            break;
        int c = control(p, m);
        if (c == 1) {
            *out = m;
            break;
        }
        kb_msg_unref(m);
        if (c < 0) {
            ret = c;
            break;
        }
    }
    *used = pos;
    return ret;
}

void kb_proto_cmd_begin(struct kb_cmd_builder *b, const char *name, double txn)
{
    memset(&b->body, 0, sizeof(b->body));
    b->w = (struct kb_amf_w){.out = &b->body, .err = 0};
    kb_amf_w_string(&b->w, name);
    kb_amf_w_number(&b->w, txn);
}

int kb_proto_cmd_end(struct kb_proto *p, struct kb_cmd_builder *b, uint32_t msid)
{
    int err = b->w.err;
    if (err == 0)
        err = kb_proto_send(p, KB_CSID_COMMAND, KB_MSG_COMMAND_AMF0, 0, msid, b->body.data,
                            (uint32_t)b->body.len);
    kb_buf_free(&b->body);
    return err;
}

int kb_proto_send_status(struct kb_proto *p, uint32_t msid, const char *level,
                         const char *code, const char *description)
{
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "onStatus", 0);
    kb_amf_w_null(&b.w);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "level", level);
    kb_amf_w_prop_string(&b.w, "code", code);
    kb_amf_w_prop_string(&b.w, "description", description);
    kb_amf_w_object_end(&b.w);
    return kb_proto_cmd_end(p, &b, msid);
}

int kb_proto_connect_result(struct kb_proto *p, double txn, double object_encoding)
{
    struct kb_cmd_builder b;
    kb_proto_cmd_begin(&b, "_result", txn);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "fmsVer", "FMS/3,5,7,7009");
    kb_amf_w_prop_number(&b.w, "capabilities", 31);
    kb_amf_w_prop_number(&b.w, "mode", 1);
    /* E-RTMP: "the server SHOULD state its support" in this object. Legacy
     * clients skip properties they do not know. */
    kb_caps_write_ours(&b.w);
    kb_amf_w_object_end(&b.w);
    kb_amf_w_object_begin(&b.w);
    kb_amf_w_prop_string(&b.w, "level", "status");
    kb_amf_w_prop_string(&b.w, "code", "NetConnection.Connect.Success");
    kb_amf_w_prop_string(&b.w, "description", "Connection succeeded.");
    kb_amf_w_prop_number(&b.w, "objectEncoding", object_encoding);
    kb_amf_w_object_end(&b.w);
    return kb_proto_cmd_end(p, &b, 0);
}

int kb_cmd_parse(struct kb_cmd *c, const struct kb_msg *msg)
{
    const uint8_t *p = msg->data;
    size_t n = msg->len;

    /* An AMF3 command message starts with a 0 byte, then plain AMF0. */
    if (msg->type == KB_MSG_COMMAND_AMF3 && n > 0 && p[0] == 0) {
        p++;
        n--;
    }
    int err = kb_amf_decode(&c->doc, p, n);
    if (err < 0)
        return err;
    c->name = kb_amf_root(&c->doc, 0);
    const struct kb_amf_node *txn = kb_amf_root(&c->doc, 1);
    if (!c->name || c->name->type != KB_AMF_STRING)
        return KB_ECMD;
    c->txn = txn && txn->type == KB_AMF_NUMBER ? txn->num : 0;
    c->obj = kb_amf_root(&c->doc, 2);
    c->arg1 = kb_amf_root(&c->doc, 3);
    c->arg2 = kb_amf_root(&c->doc, 4);
    c->arg3 = kb_amf_root(&c->doc, 5);
    return 0;
}
