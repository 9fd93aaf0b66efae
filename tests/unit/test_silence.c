/* kebun: unit tests for silent audio (relay/silence.c), and the real AAC
 * silence libavcodec makes (relay/aacsilence.c).
 *
 * Covered: auto holds up to 2 s of video and then adds silence from the
 * first video frame, interleaved by timestamp; audio within the wait
 * releases the stream unchanged; on adds it at once; a returning publisher
 * of a silent broadcast gets it at once; real audio that starts later takes
 * over at the next keyframe with one sequence header and no step back in
 * time; the publisher leaving releases what is held; the hold is bounded;
 * off does nothing. */
#include "relay/silence.h"

#include "relay/aacsilence.h"
#include "relay/rtmp/flv.h"
#include "test.h"

#define OUT_MAX 8192

struct out {
    struct kb_msg *m[OUT_MAX];
    int n;
};

static int collect(void *ud, struct kb_msg *m)
{
    struct out *o = ud;
    if (o->n < OUT_MAX)
        o->m[o->n++] = m;
    else
        kb_msg_unref(m);
    return 0;
}

static void out_clear(struct out *o)
{
    for (int i = 0; i < o->n; i++)
        kb_msg_unref(o->m[i]);
    o->n = 0;
}

static const struct kb_silent_aac fake = {
    .hdr = {0xAF, 0x00, 0x11, 0x90},
    .hdr_len = 4,
    .frame = {0xAF, 0x01, 0x21, 0x10, 0x04},
    .frame_len = 5,
    .rate = 48000,
    .frame_samples = 1024,
};

enum kind { VKEY, VINTER, VHDR, AFRAME, AHDR, META };

static struct kb_msg *msg(enum kind k, uint32_t ts)
{
    static const uint8_t vkey[] = {0x17, 0x01, 0, 0, 0, 0xAA};
    static const uint8_t vinter[] = {0x27, 0x01, 0, 0, 0, 0xBB};
    static const uint8_t vhdr[] = {0x17, 0x00, 0, 0, 0, 0x01, 0x64};
    static const uint8_t aframe[] = {0xAF, 0x01, 0xCC, 0xDD};
    static const uint8_t ahdr[] = {0xAF, 0x00, 0x12, 0x10};
    static const uint8_t meta[] = {0x02, 0x00, 0x0A, 'o', 'n', 'M', 'e', 't',
                                   'a', 'D', 'a', 't', 'a', 0x05};
    const uint8_t *p;
    uint32_t n;
    uint8_t type = KB_MSG_VIDEO;
    switch (k) {
    case VKEY: p = vkey, n = sizeof(vkey); break;
    case VINTER: p = vinter, n = sizeof(vinter); break;
    case VHDR: p = vhdr, n = sizeof(vhdr); break;
    case AFRAME: p = aframe, n = sizeof(aframe), type = KB_MSG_AUDIO; break;
    case AHDR: p = ahdr, n = sizeof(ahdr), type = KB_MSG_AUDIO; break;
    default: p = meta, n = sizeof(meta), type = KB_MSG_DATA_AMF0; break;
    }
    struct kb_msg *m = kb_msg_new_copy(type, ts, 1, p, n);
    kb_flv_classify(m);
    return m;
}

static int push(struct kb_silence *s, struct out *o, enum kind k, uint32_t ts)
{
    return kb_silence_push(s, msg(k, ts), collect, o);
}

static int is_silent_frame(const struct kb_msg *m)
{
    return m->type == KB_MSG_AUDIO && m->len == fake.frame_len &&
           memcmp(m->data, fake.frame, fake.frame_len) == 0;
}

static int is_silent_hdr(const struct kb_msg *m)
{
    return m->type == KB_MSG_AUDIO && m->len == fake.hdr_len &&
           memcmp(m->data, fake.hdr, fake.hdr_len) == 0;
}

/* Silence frame n of a track starting at `start`. */
static uint32_t frame_ts(uint32_t start, uint64_t n)
{
    return start + (uint32_t)(n * 1024 * 1000 / 48000);
}

/* Every silent frame follows the one before by one frame's time, from
 * `start`; each message goes out after every silent frame up to its time
 * and before any after it. Returns the count of silent frames. */
static int check_interleaving(const struct out *o, uint32_t start, int *frames)
{
    uint64_t n = 0;
    for (int i = 0; i < o->n; i++) {
        const struct kb_msg *m = o->m[i];
        if (is_silent_frame(m)) {
            ASSERT_EQ(m->timestamp, frame_ts(start, n));
            n++;
            ASSERT_EQ(m->flags & KB_MSGF_AUDIO, KB_MSGF_AUDIO);
            ASSERT_EQ(kb_msg_is_setup(m), 0);
        } else if (!kb_msg_is_setup(m) && n > 0) {
            /* frames before its time went before it, the next one is not
             * earlier */
            ASSERT_EQ((int32_t)(frame_ts(start, n - 1) - m->timestamp) < 0, 1);
            ASSERT_EQ((int32_t)(frame_ts(start, n) - m->timestamp) >= 0, 1);
        }
    }
    *frames = (int)n;
    return 0;
}

static int test_auto_holds_then_adds_silence_from_the_first_frame(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_AUTO, &fake);
    kb_silence_session(&s, 0);
    /* Setup before the first frame goes out at once. */
    ASSERT_EQ(push(&s, &o, META, 1000), 0);
    ASSERT_EQ(push(&s, &o, VHDR, 1000), 0);
    ASSERT_EQ(o.n, 2);
    /* Video is held for 2 s of its own time. */
    uint32_t ts = 1000;
    ASSERT_EQ(push(&s, &o, VKEY, ts), 0);
    for (int i = 1; i < 60; i++)
        ASSERT_EQ(push(&s, &o, i % 30 ? VINTER : VKEY, ts + (uint32_t)i * 33), 0);
    ASSERT_EQ(o.n, 2);
    ASSERT_EQ(s.events, 0);
    ASSERT_EQ(push(&s, &o, VINTER, ts + 2000), 0);
    ASSERT_EQ(s.events, KB_SILENCE_EV_ON);
    ASSERT_EQ(s.held_ms, 2000);
    ASSERT_EQ(kb_silence_active(&s), 1);
    /* The silence's header, at the first frame's time, before any frame. */
    ASSERT_EQ(is_silent_hdr(o.m[2]), 1);
    ASSERT_EQ(o.m[2]->timestamp, 1000);
    ASSERT_EQ(o.m[2]->flags & KB_MSGF_SEQHDR, KB_MSGF_SEQHDR);
    int frames = 0;
    ASSERT_EQ(check_interleaving(&o, 1000, &frames), 0);
    ASSERT_EQ(frames, 2000 * 48 / 1024 + 1); /* 0 .. 1984 ms: before 2000 */
    /* The video went out in its order, all 61 frames. */
    int video = 0;
    uint32_t last = 0;
    for (int i = 0; i < o.n; i++)
        if (o.m[i]->type == KB_MSG_VIDEO && !kb_msg_is_setup(o.m[i])) {
            ASSERT_LE(last, o.m[i]->timestamp);
            last = o.m[i]->timestamp;
            video++;
        }
    ASSERT_EQ(video, 61);
    /* From now on each message goes at once, with the silence before it. */
    s.events = 0;
    int before = o.n;
    ASSERT_EQ(push(&s, &o, VINTER, ts + 2033), 0);
    ASSERT_EQ(o.n - before, 3); /* the frames at 3005 and 3026 ms, then the video */
    /* The publisher leaves: the frame at its last message's time goes too. */
    ASSERT_EQ(push(&s, &o, VINTER, ts + 2048), 0); /* frame 3048 is not before it */
    before = o.n;
    ASSERT_EQ(kb_silence_flush(&s, collect, &o), 0);
    ASSERT_EQ(o.n - before, 1);
    ASSERT_EQ(o.m[before]->timestamp, 3048);
    ASSERT_EQ(is_silent_frame(o.m[before]), 1);
    ASSERT_EQ(check_interleaving(&o, 1000, &frames), 0);
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

static int test_auto_audio_in_time_releases_unchanged(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_AUTO, &fake);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 0), 0);
    ASSERT_EQ(push(&s, &o, VINTER, 33), 0);
    ASSERT_EQ(push(&s, &o, AHDR, 40), 0);
    ASSERT_EQ(o.n, 0); /* held with the video */
    ASSERT_EQ(push(&s, &o, AFRAME, 40), 0);
    ASSERT_EQ(o.n, 4);
    ASSERT_EQ(o.m[0]->flags & KB_MSGF_KEY, KB_MSGF_KEY);
    ASSERT_EQ(o.m[2]->flags & KB_MSGF_SEQHDR, KB_MSGF_SEQHDR);
    ASSERT_EQ(o.m[3]->timestamp, 40);
    ASSERT_EQ(push(&s, &o, VINTER, 5000), 0);
    ASSERT_EQ(o.n, 5);
    for (int i = 0; i < o.n; i++)
        ASSERT_EQ(is_silent_frame(o.m[i]) || is_silent_hdr(o.m[i]), 0);
    ASSERT_EQ(s.events, 0);
    ASSERT_EQ(kb_silence_active(&s), 0);
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

/* Audio before the first video frame: never held. */
static int test_auto_audio_first_never_holds(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_AUTO, &fake);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, AHDR, 0), 0);
    ASSERT_EQ(o.n, 0); /* the header waits for its first frame */
    ASSERT_EQ(push(&s, &o, AFRAME, 0), 0);
    ASSERT_EQ(push(&s, &o, VKEY, 0), 0);
    ASSERT_EQ(o.n, 3);
    ASSERT_EQ(o.m[0]->flags & KB_MSGF_SEQHDR, KB_MSGF_SEQHDR);
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

static int test_on_adds_at_once(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_ON, &fake);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 500), 0);
    ASSERT_EQ(s.events, KB_SILENCE_EV_ON);
    ASSERT_EQ(s.held_ms, 0);
    ASSERT_EQ(o.n, 2); /* header, the keyframe; the frame at 500 goes after it */
    ASSERT_EQ(is_silent_hdr(o.m[0]), 1);
    ASSERT_EQ(o.m[1]->type, KB_MSG_VIDEO);
    ASSERT_EQ(push(&s, &o, VINTER, 600), 0);
    ASSERT_EQ(is_silent_frame(o.m[2]), 1);
    ASSERT_EQ(o.m[2]->timestamp, 500);
    int frames;
    ASSERT_EQ(check_interleaving(&o, 500, &frames), 0);
    ASSERT_EQ(frames, 5); /* 500, 521, 542, 564, 585 */
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

/* Real audio mid-broadcast: its frames wait for the next keyframe; there
 * the silence stops, the real header goes once at the keyframe's time,
 * and nothing goes back in time. */
static int test_switch_to_real_audio_at_a_keyframe(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_ON, &fake);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 0), 0);
    ASSERT_EQ(push(&s, &o, VINTER, 33), 0);
    s.events = 0;
    ASSERT_EQ(push(&s, &o, AHDR, 50), 0);
    ASSERT_EQ(push(&s, &o, AFRAME, 50), 0);
    ASSERT_EQ(s.events, KB_SILENCE_EV_WAITING);
    ASSERT_EQ(push(&s, &o, VINTER, 66), 0);
    ASSERT_EQ(push(&s, &o, AFRAME, 73), 0);
    for (int i = 0; i < o.n; i++)
        ASSERT_EQ(o.m[i]->type == KB_MSG_AUDIO && !is_silent_frame(o.m[i]) &&
                      !is_silent_hdr(o.m[i]), 0);
    int before = o.n;
    ASSERT_EQ(push(&s, &o, VKEY, 100), 0);
    ASSERT_EQ(s.events & KB_SILENCE_EV_SWITCH, KB_SILENCE_EV_SWITCH);
    ASSERT_EQ(kb_silence_active(&s), 0);
    /* silence up to 85.3 ms, the real header at 100, the keyframe */
    ASSERT_EQ(is_silent_frame(o.m[before]), 1);
    ASSERT_EQ(o.m[before]->timestamp, 85);
    ASSERT_EQ(o.m[before + 1]->type, KB_MSG_AUDIO);
    ASSERT_EQ(o.m[before + 1]->flags & KB_MSGF_SEQHDR, KB_MSGF_SEQHDR);
    ASSERT_EQ(o.m[before + 1]->data[2], 0x12); /* the publisher's own ASC */
    ASSERT_EQ(o.m[before + 1]->timestamp, 100);
    ASSERT_EQ(o.m[before + 2]->flags & KB_MSGF_KEY, KB_MSGF_KEY);
    ASSERT_EQ(o.n, before + 3);
    /* Real audio from before the last silence frame is dropped; then it
     * all goes. */
    ASSERT_EQ(push(&s, &o, AFRAME, 80), 0);
    ASSERT_EQ(o.n, before + 3);
    ASSERT_EQ(push(&s, &o, AFRAME, 96), 0);
    ASSERT_EQ(push(&s, &o, AFRAME, 90), 0); /* not dropped again: the floor is gone */
    ASSERT_EQ(o.n, before + 5);
    int headers = 0;
    for (int i = 0; i < o.n; i++)
        headers += o.m[i]->type == KB_MSG_AUDIO && (o.m[i]->flags & KB_MSGF_SEQHDR);
    ASSERT_EQ(headers, 2); /* the silence's and the publisher's, once each */
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

static int test_leaving_releases_what_is_held(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_AUTO, &fake);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 0), 0);
    ASSERT_EQ(push(&s, &o, VINTER, 33), 0);
    ASSERT_EQ(o.n, 0);
    ASSERT_EQ(kb_silence_flush(&s, collect, &o), 0);
    ASSERT_EQ(o.n, 2);
    ASSERT_EQ(o.m[0]->timestamp, 0);
    ASSERT_EQ(o.m[1]->timestamp, 33);
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

/* A publisher that returns to a broadcast that had silence gets it at
 * once; a new broadcast waits again. */
static int test_resumed_broadcast_gets_silence_at_once(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_AUTO, &fake);
    kb_silence_session(&s, 0);
    for (uint32_t t = 0; t <= 2000; t += 40)
        ASSERT_EQ(push(&s, &o, t % 1000 ? VINTER : VKEY, t), 0);
    ASSERT_EQ(kb_silence_active(&s), 1);
    ASSERT_EQ(kb_silence_flush(&s, collect, &o), 0);
    out_clear(&o);
    s.events = 0;
    kb_silence_session(&s, 1);
    ASSERT_EQ(push(&s, &o, VKEY, 3000), 0);
    ASSERT_EQ(s.events, KB_SILENCE_EV_ON);
    ASSERT_EQ(s.held_ms, 0);
    ASSERT_EQ(o.n, 2);
    out_clear(&o);
    ASSERT_EQ(kb_silence_flush(&s, collect, &o), 0);
    out_clear(&o);
    s.events = 0;
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 9000), 0);
    ASSERT_EQ(o.n, 0); /* held: a new broadcast waits for audio again */
    ASSERT_EQ(kb_silence_flush(&s, collect, &o), 0);
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

static int test_hold_is_bounded(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_AUTO, &fake);
    kb_silence_session(&s, 0);
    /* Messages that all carry the same time: only the count ends the wait. */
    for (int i = 0; i < KB_SILENCE_HOLD_MSGS - 1; i++)
        ASSERT_EQ(push(&s, &o, VINTER, 7), 0);
    ASSERT_EQ(o.n, 0);
    ASSERT_EQ(push(&s, &o, VINTER, 7), 0);
    ASSERT_EQ(s.events, KB_SILENCE_EV_ON);
    ASSERT_EQ(s.n_held, 0);
    ASSERT_EQ(o.n, KB_SILENCE_HOLD_MSGS + 1); /* header, the video (frame 7 goes after) */
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

static int test_off_and_no_encoder_pass_everything(void)
{
    struct kb_silence s;
    struct out o = {0};
    kb_silence_init(&s, KB_SILENCE_OFF, &fake);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 0), 0);
    ASSERT_EQ(push(&s, &o, VINTER, 5000), 0);
    ASSERT_EQ(o.n, 2);
    out_clear(&o);
    kb_silence_free(&s);
    kb_silence_init(&s, KB_SILENCE_ON, NULL);
    kb_silence_session(&s, 0);
    ASSERT_EQ(push(&s, &o, VKEY, 0), 0);
    ASSERT_EQ(o.n, 1);
    out_clear(&o);
    kb_silence_free(&s);
    return 0;
}

/* libavcodec's AAC silence: AAC-LC, 48 kHz, stereo, as FLV payloads. */
static int test_real_encoder(void)
{
    struct kb_silent_aac a;
    ASSERT_EQ(kb_silent_aac_make(&a), 0);
    ASSERT_EQ(a.rate, 48000);
    ASSERT_EQ(a.frame_samples, 1024);
    ASSERT_EQ(a.hdr[0], 0xAF);
    ASSERT_EQ(a.hdr[1], 0);
    /* AudioSpecificConfig: object type 2 (LC), index 3 (48 kHz), 2 channels */
    ASSERT_EQ(a.hdr[2] >> 3, 2);
    ASSERT_EQ(((a.hdr[2] & 7) << 1) | (a.hdr[3] >> 7), 3);
    ASSERT_EQ((a.hdr[3] >> 3) & 15, 2);
    ASSERT_EQ(a.frame[0], 0xAF);
    ASSERT_EQ(a.frame[1], 1);
    ASSERT_LE(3, a.frame_len);
    struct kb_msg *m = kb_msg_new_copy(KB_MSG_AUDIO, 0, 1, a.hdr, a.hdr_len);
    kb_flv_classify(m);
    ASSERT_EQ(m->flags & KB_MSGF_SEQHDR, KB_MSGF_SEQHDR);
    kb_msg_unref(m);
    return 0;
}

int main(void)
{
    RUN(test_auto_holds_then_adds_silence_from_the_first_frame);
    RUN(test_auto_audio_in_time_releases_unchanged);
    RUN(test_auto_audio_first_never_holds);
    RUN(test_on_adds_at_once);
    RUN(test_switch_to_real_audio_at_a_keyframe);
    RUN(test_leaving_releases_what_is_held);
    RUN(test_resumed_broadcast_gets_silence_at_once);
    RUN(test_hold_is_bounded);
    RUN(test_off_and_no_encoder_pass_everything);
    RUN(test_real_encoder);
    return test_summary();
}
