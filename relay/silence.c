#include "silence.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "relay/rtmp/flv.h"

enum {
    S_PASS,   ///< the publisher's messages as they come (real audio, or off)
    S_IDLE,   ///< no video frame yet this session
    S_WAIT,   ///< auto: holding, waiting for audio
    S_SILENT, ///< adding silence
    S_SWITCH, ///< adding silence; real audio began, switching at the next keyframe
};

void kb_silence_init(struct kb_silence *s, enum kb_silence_mode mode,
                     const struct kb_silent_aac *aac)
{
    memset(s, 0, sizeof(*s));
    s->mode = (uint8_t)mode;
    s->aac = aac;
    s->state = S_PASS;
}

void kb_silence_set_mode(struct kb_silence *s, enum kb_silence_mode mode)
{
    s->mode = (uint8_t)mode;
}

static void keep(struct kb_msg **slot, struct kb_msg *m)
{
    if (*slot)
        kb_msg_unref(*slot);
    *slot = m ? kb_msg_ref(m) : NULL;
}

void kb_silence_session(struct kb_silence *s, int resumed)
{
    /* kb_silence_flush emptied the hold when the last session ended. */
    s->state = s->mode == KB_SILENCE_OFF || !s->aac ? S_PASS : S_IDLE;
    if (!resumed)
        s->was_silent = 0;
    s->n = 0;
    s->floor_set = 0;
    keep(&s->real_hdr, NULL);
}

int kb_silence_active(const struct kb_silence *s)
{
    return s->state == S_SILENT || s->state == S_SWITCH;
}

static int is_audio_frame(const struct kb_msg *m)
{
    return (m->flags & KB_MSGF_AUDIO) && !kb_msg_is_setup(m);
}

static int is_video_frame(const struct kb_msg *m)
{
    return (m->flags & KB_MSGF_VIDEO) && !kb_msg_is_setup(m);
}

/* A silent AAC message (header or frame) at `ts`. */
static struct kb_msg *make(const uint8_t *p, uint32_t len, uint32_t ts, uint32_t msid)
{
    struct kb_msg *m = kb_msg_new_copy(KB_MSG_AUDIO, ts, msid, p, len);
    if (m)
        kb_flv_classify(m);
    return m;
}

static uint32_t frame_ts(const struct kb_silence *s, uint64_t n)
{
    uint64_t ms = n * (uint64_t)s->aac->frame_samples * 1000 / (uint64_t)s->aac->rate;
    return s->start + (uint32_t)ms;
}

/* Every silence frame with a timestamp before `until`. A frame at the same
 * time as a video frame goes after it: a platform that records from its
 * first keyframe (nginx-rtmp) would drop audio that came before. */
static int fill(struct kb_silence *s, uint32_t until, uint32_t msid, kb_silence_emit_fn emit,
                void *ud)
{
    for (;;) {
        uint32_t ts = frame_ts(s, s->n);
        if ((int32_t)(ts - until) >= 0)
            return 0;
        struct kb_msg *f = make(s->aac->frame, s->aac->frame_len, ts, msid);
        if (!f)
            return -ENOMEM;
        s->n++;
        s->frames++;
        s->floor = ts;
        int err = emit(ud, f);
        if (err < 0)
            return err;
    }
}

static int pass(struct kb_msg *m, kb_silence_emit_fn emit, void *ud)
{
    return emit(ud, m);
}

/* A message that goes out while silence is on: the silence up to its time
 * first. Takes m. */
static int with_silence(struct kb_silence *s, struct kb_msg *m, kb_silence_emit_fn emit, void *ud)
{
    s->last = m->timestamp;
    s->last_msid = m->stream_id;
    int err = fill(s, m->timestamp, m->stream_id, emit, ud);
    if (err < 0) {
        kb_msg_unref(m);
        return err;
    }
    return emit(ud, m);
}

static void drop_held(struct kb_silence *s)
{
    for (uint32_t i = 0; i < s->n_held; i++)
        kb_msg_unref(s->held[i]);
    s->n_held = 0;
    s->held_bytes = 0;
}

/* Release what is held as it came (audio turned up, the publisher left). */
static int release(struct kb_silence *s, kb_silence_emit_fn emit, void *ud)
{
    int err = 0;
    uint32_t i = 0;
    for (; i < s->n_held && err >= 0; i++)
        err = emit(ud, s->held[i]);
    for (; i < s->n_held; i++)
        kb_msg_unref(s->held[i]);
    s->n_held = 0;
    s->held_bytes = 0;
    return err;
}

/* Silence from `start` on: its sequence header, then what is held with
 * the silence interleaved. */
static int begin(struct kb_silence *s, uint32_t msid, kb_silence_emit_fn emit, void *ud)
{
    s->state = S_SILENT;
    s->was_silent = 1;
    s->events |= KB_SILENCE_EV_ON;
    struct kb_msg *h = make(s->aac->hdr, s->aac->hdr_len, s->start, msid);
    int err = h ? emit(ud, h) : -ENOMEM;
    uint32_t i = 0;
    for (; i < s->n_held && err >= 0; i++) {
        struct kb_msg *m = s->held[i];
        /* The publisher's own audio header (with no frame after it) would
         * only replace the silence's; it is kept for a switch. */
        if ((m->flags & KB_MSGF_AUDIO) && kb_msg_is_setup(m))
            kb_msg_unref(m);
        else
            err = with_silence(s, m, emit, ud);
    }
    for (; i < s->n_held; i++)
        kb_msg_unref(s->held[i]);
    s->n_held = 0;
    s->held_bytes = 0;
    return err;
}

static int hold(struct kb_silence *s, struct kb_msg *m)
{
    if (s->n_held == s->cap_held) {
        uint32_t cap = s->cap_held ? s->cap_held * 2 : 256;
        struct kb_msg **h = realloc(s->held, cap * sizeof(*h));
        if (!h)
            return -ENOMEM;
        s->held = h;
        s->cap_held = cap;
    }
    s->held[s->n_held++] = m;
    s->held_bytes += m->len;
    return 0;
}

/* Silence on; real audio began. At a video keyframe: the silence up to
 * just before it, the real sequence header at its time, and the real audio
 * from there on. */
static int switch_at(struct kb_silence *s, struct kb_msg *key, kb_silence_emit_fn emit, void *ud)
{
    int err = fill(s, key->timestamp, key->stream_id, emit, ud);
    struct kb_msg *h = NULL;
    if (err >= 0 && s->real_hdr) {
        h = kb_msg_new_copy(KB_MSG_AUDIO, key->timestamp, key->stream_id, s->real_hdr->data,
                            s->real_hdr->len);
        if (!h)
            err = -ENOMEM;
        else
            kb_flv_classify(h);
    }
    if (err < 0) {
        kb_msg_unref(key);
        return err;
    }
    s->state = S_PASS;
    s->was_silent = 0;
    s->floor_set = 1;
    s->events |= KB_SILENCE_EV_SWITCH;
    if (h && (err = emit(ud, h)) < 0) {
        kb_msg_unref(key);
        return err;
    }
    return emit(ud, key);
}

/* The publisher's own audio: what is held goes out as it came, then m,
 * and from here on everything passes. */
static int go_on(struct kb_silence *s, struct kb_msg *m, kb_silence_emit_fn emit, void *ud)
{
    s->state = S_PASS;
    int err = release(s, emit, ud);
    if (err < 0) {
        kb_msg_unref(m);
        return err;
    }
    return pass(m, emit, ud);
}

/* auto, deciding: audio releases what is held; past the wait, silence. */
static int wait_step(struct kb_silence *s, struct kb_msg *m, kb_silence_emit_fn emit, void *ud)
{
    if (is_audio_frame(m) || hold(s, m) < 0) {
        /* Audio came (or there is no room to wait): the stream goes on as
         * it came. */
        return go_on(s, m, emit, ud);
    }
    uint32_t waited = m->timestamp - s->start;
    if (waited >= 1u << 31)
        waited = 0; /* before the first video frame: interleaving jitter */
    if ((is_video_frame(m) && waited >= KB_SILENCE_WAIT_MS) || s->n_held >= KB_SILENCE_HOLD_MSGS ||
        s->held_bytes >= KB_SILENCE_HOLD_BYTES) {
        s->held_ms = waited ? waited : 1; /* nonzero: it was auto that waited */
        return begin(s, m->stream_id, emit, ud);
    }
    return 0;
}

int kb_silence_push(struct kb_silence *s, struct kb_msg *m, kb_silence_emit_fn emit, void *ud)
{
    if ((m->flags & KB_MSGF_AUDIO) && (m->flags & KB_MSGF_SEQHDR) && s->state != S_PASS)
        keep(&s->real_hdr, m);
    switch (s->state) {
    case S_PASS:
        if (s->floor_set && is_audio_frame(m)) {
            /* Real audio from just before the switch would go back in time. */
            if ((int32_t)(m->timestamp - s->floor) <= 0) {
                kb_msg_unref(m);
                return 0;
            }
            s->floor_set = 0;
        }
        return pass(m, emit, ud);
    case S_IDLE:
        if (is_audio_frame(m))
            return go_on(s, m, emit, ud);
        /* The publisher's audio header waits for its first frame: with
         * silence instead it would be one more header for nothing. */
        if ((m->flags & KB_MSGF_AUDIO) && kb_msg_is_setup(m)) {
            if (hold(s, m) < 0)
                return pass(m, emit, ud);
            return 0;
        }
        if (!is_video_frame(m))
            return pass(m, emit, ud);
        s->start = m->timestamp;
        s->n = 0;
        if (s->mode == KB_SILENCE_ON || s->was_silent) {
            s->held_ms = 0;
            int err = begin(s, m->stream_id, emit, ud);
            if (err < 0) {
                kb_msg_unref(m);
                return err;
            }
            return with_silence(s, m, emit, ud);
        }
        s->state = S_WAIT; /* the first video frame is held too */
        return wait_step(s, m, emit, ud);
    case S_WAIT:
        return wait_step(s, m, emit, ud);
    case S_SILENT:
    case S_SWITCH:
        if (m->flags & KB_MSGF_AUDIO) {
            /* Real audio: a header is kept (above), frames wait for the
             * switch; neither goes out while the silence does. */
            if (is_audio_frame(m) && s->state == S_SILENT) {
                s->state = S_SWITCH;
                s->events |= KB_SILENCE_EV_WAITING;
            }
            kb_msg_unref(m);
            return 0;
        }
        if (s->state == S_SWITCH && is_video_frame(m) && (m->flags & KB_MSGF_KEY))
            return switch_at(s, m, emit, ud);
        return with_silence(s, m, emit, ud);
    }
    return pass(m, emit, ud);
}

int kb_silence_flush(struct kb_silence *s, kb_silence_emit_fn emit, void *ud)
{
    int err = 0;
    if (s->state == S_WAIT || s->state == S_IDLE)
        err = release(s, emit, ud);
    else if (kb_silence_active(s)) /* the frame at the last message's time */
        err = fill(s, s->last + 1, s->last_msid, emit, ud);
    s->state = S_PASS;
    return err;
}

void kb_silence_free(struct kb_silence *s)
{
    drop_held(s);
    free(s->held);
    s->held = NULL;
    s->cap_held = 0;
    keep(&s->real_hdr, NULL);
}
