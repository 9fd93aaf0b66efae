/* kebun: the silent AAC track's bytes, encoded once with libavcodec.
 *
 * AAC-LC frames are independent once the encoder is past its start (the
 * first frames carry its priming), so one frame of encoded silence sent
 * again and again decodes as silence. The sequence header is the encoder's
 * AudioSpecificConfig (its global header).
 */
#include "aacsilence.h"

#include <errno.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libavutil/channel_layout.h>

#define RATE 48000
#define FRAMES 8 /* encoded before one is taken: well past the priming */

/* FLV audio tag header byte for AAC: SoundFormat 10, and the fields AAC
 * ignores set as FLV says they must be (44 kHz, 16-bit, stereo). */
#define FLV_AAC 0xAF

static int encode(AVCodecContext *c, AVFrame *f, AVPacket *p, struct kb_silent_aac *out)
{
    int got = 0;
    for (int i = 0; i < FRAMES; i++) {
        f->pts = (int64_t)i * c->frame_size;
        int err = avcodec_send_frame(c, f);
        if (err < 0)
            return err;
        while ((err = avcodec_receive_packet(c, p)) >= 0) {
            if (p->size > 0 && (size_t)p->size + 2 <= sizeof(out->frame)) {
                out->frame[0] = FLV_AAC;
                out->frame[1] = 1; /* AAC raw */
                memcpy(out->frame + 2, p->data, (size_t)p->size);
                out->frame_len = (uint32_t)p->size + 2;
                got++;
            }
            av_packet_unref(p);
        }
        if (err != AVERROR(EAGAIN))
            return err;
    }
    /* The last frame taken is one from the steady state; the frames the
     * encoder still holds (its tail) are drained and not used. */
    if (avcodec_send_frame(c, NULL) >= 0)
        while (avcodec_receive_packet(c, p) >= 0)
            av_packet_unref(p);
    return got >= 2 ? 0 : AVERROR(EINVAL);
}

int kb_silent_aac_make(struct kb_silent_aac *out)
{
    memset(out, 0, sizeof(*out));
    const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
    if (!codec)
        return AVERROR_ENCODER_NOT_FOUND;
    AVCodecContext *c = avcodec_alloc_context3(codec);
    AVFrame *f = av_frame_alloc();
    AVPacket *p = av_packet_alloc();
    int err = AVERROR(ENOMEM);
    if (!c || !f || !p)
        goto done;
    c->sample_rate = RATE;
    c->sample_fmt = AV_SAMPLE_FMT_FLTP;
    c->bit_rate = 64000;
    c->profile = FF_PROFILE_AAC_LOW;
    c->time_base = (AVRational){1, RATE};
    c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    av_channel_layout_default(&c->ch_layout, 2);
    if ((err = avcodec_open2(c, codec, NULL)) < 0)
        goto done;
    if (c->extradata_size < 2 || (size_t)c->extradata_size + 2 > sizeof(out->hdr) ||
        c->frame_size <= 0) {
        err = AVERROR(EINVAL);
        goto done;
    }
    out->hdr[0] = FLV_AAC;
    out->hdr[1] = 0; /* AAC sequence header */
    memcpy(out->hdr + 2, c->extradata, (size_t)c->extradata_size);
    out->hdr_len = (uint32_t)c->extradata_size + 2;
    out->rate = RATE;
    out->frame_samples = c->frame_size;
    f->nb_samples = c->frame_size;
    f->format = c->sample_fmt;
    f->sample_rate = RATE;
    if ((err = av_channel_layout_copy(&f->ch_layout, &c->ch_layout)) < 0 ||
        (err = av_frame_get_buffer(f, 0)) < 0)
        goto done;
    for (int ch = 0; ch < f->ch_layout.nb_channels; ch++)
        memset(f->extended_data[ch], 0, (size_t)f->nb_samples * sizeof(float));
    err = encode(c, f, p, out);
done:
    av_packet_free(&p);
    av_frame_free(&f);
    avcodec_free_context(&c);
    if (err < 0)
        memset(out, 0, sizeof(*out));
    return err;
}
