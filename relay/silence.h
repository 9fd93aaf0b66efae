/* kebun: a silent audio track for streams that have none.
 *
 * Facebook Live refuses a stream without audio, and a phone app with its
 * microphone off sends exactly that. A stream with silent_audio on or auto
 * gets an AAC-LC track of silence (48 kHz stereo) interleaved with its
 * video, for every sink: platforms, the recording, players.
 *
 * The frames come from kb_silent_aac (relay/aacsilence.c: encoded once with
 * libavcodec at start); this file only decides when they go and with what
 * timestamps. It sits in the stream's message path after the timeline is
 * rebased, so it sees and produces timeline timestamps:
 *
 *  - `auto`: once the first video frame arrives, kebun holds the stream for
 *    up to 2 s of video time. An audio frame in that time releases it as it
 *    came (the usual case: encoders send audio within milliseconds). With
 *    none, the silence begins at the first video frame's time and the held
 *    messages go out with it interleaved, so the audio track is as long as
 *    the video (every sink sees the stream 2 s late, once, at its start).
 *  - `on`: silence at once from the first video frame, unless an audio frame
 *    came before it.
 *  - A returning publisher (within the grace period) of a broadcast that had
 *    silence gets it at once, as with `on`, so the track has no hole.
 *  - Silence frame n has timestamp start + n * 1024000 / 48000 ms; before a
 *    message of time T goes out, every frame before T goes first (one at T
 *    goes after it, so audio never precedes the keyframe it starts with).
 *  - The publisher's audio sequence header, when it comes before its first
 *    frame, waits for that frame (with silence instead it would be one more
 *    header for nothing).
 *  - Real audio that starts later: its sequence header is kept, its frames
 *    are dropped until the next video keyframe; there the silence ends, the
 *    real sequence header goes out once (at the keyframe's time) and real
 *    audio follows.
 *
 * Pure logic over messages: no clock, no sockets, no logging (events say
 * what happened).
 */
#ifndef KB_SILENCE_H
#define KB_SILENCE_H

#include <stdint.h>

#include "relay/rtmp/msg.h"

#define KB_SILENCE_WAIT_MS 2000          ///< auto: video time without audio before silence
#define KB_SILENCE_HOLD_MSGS 4096        ///< auto: decide early past this many held messages
#define KB_SILENCE_HOLD_BYTES (16u << 20) ///< ... or this many held payload bytes

/* The encoded silence: FLV audio payloads, ready to send. */
struct kb_silent_aac {
    uint8_t hdr[16];    ///< AAC sequence header: 0xAF 0x00 AudioSpecificConfig
    uint32_t hdr_len;
    uint8_t frame[256]; ///< one silent AAC-LC frame: 0xAF 0x01 raw frame
    uint32_t frame_len;
    int rate;           ///< sample rate (48000)
    int frame_samples;  ///< samples per frame (1024)
};

enum kb_silence_mode {
    KB_SILENCE_OFF,
    KB_SILENCE_AUTO,
    KB_SILENCE_ON,
};

/* What a push did, for the caller to log. */
enum {
    KB_SILENCE_EV_ON = 1 << 0,      ///< silence began (after `held_ms` of video without audio)
    KB_SILENCE_EV_WAITING = 1 << 1, ///< real audio began; waiting for a keyframe to switch
    KB_SILENCE_EV_SWITCH = 1 << 2,  ///< switched to the real audio at a keyframe
};

struct kb_silence {
    uint8_t mode;          ///< enum kb_silence_mode
    uint8_t state;         ///< see silence.c
    uint8_t was_silent;    ///< this broadcast had silence (a returning publisher gets it at once)
    uint8_t floor_set;     ///< just switched: drop real audio before `floor`
    uint32_t start;        ///< timestamp of silence frame 0
    uint32_t floor;        ///< last silence timestamp sent
    uint32_t last;         ///< timestamp of the last message sent with silence
    uint32_t last_msid;    ///< ... and its message stream id
    uint64_t n;            ///< silence frames sent since `start`
    uint64_t frames;       ///< silence frames sent, ever
    uint32_t held_ms;      ///< EV_ON: video time held before deciding
    struct kb_msg **held;  ///< auto: messages held while deciding, in order
    uint32_t n_held, cap_held;
    uint64_t held_bytes;
    struct kb_msg *real_hdr; ///< real audio's sequence header, kept for the switch
    const struct kb_silent_aac *aac; ///< NULL: no encoder, as if off
    unsigned events;       ///< KB_SILENCE_EV_* since the caller last cleared them
};

/* Hands a message on (taking the reference). Returns 0 or a negative errno. */
typedef int (*kb_silence_emit_fn)(void *ud, struct kb_msg *m);

void kb_silence_init(struct kb_silence *s, enum kb_silence_mode mode,
                     const struct kb_silent_aac *aac);
/* A new mode (reload): takes effect at the next publish session. */
void kb_silence_set_mode(struct kb_silence *s, enum kb_silence_mode mode);
/* A publish session begins (a new broadcast, or one that resumes). */
void kb_silence_session(struct kb_silence *s, int resumed);
/* A message of the session, on the stream's timeline (takes the reference).
 * Emits it, and what goes before it, through `emit`; returns the first
 * error `emit` returned, or -ENOMEM. */
int kb_silence_push(struct kb_silence *s, struct kb_msg *m, kb_silence_emit_fn emit, void *ud);
/* The publisher left: what is held goes out as it came. */
int kb_silence_flush(struct kb_silence *s, kb_silence_emit_fn emit, void *ud);
/* Silence is being added now. */
int kb_silence_active(const struct kb_silence *s);
void kb_silence_free(struct kb_silence *s);

#endif
