/* Thumbnails: decode one keyframe with libavcodec, scale it with libswscale
 * and encode a JPEG with the mjpeg encoder. Runs on the recorder's worker
 * thread. Each call opens its own single-threaded decoder: a keyframe
 * decodes on its own, and a decoder kept open per recording would hold
 * reference frames for nothing between thumbnails minutes apart.
 *
 * The same decode gives the picture size the mp4 muxer needs for its
 * sample entry, so a part is opened only after its first keyframe was
 * decoded here.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>

static int decode(const struct kb__codec *c, const uint8_t *p, size_t n, AVFrame *frame, char *what,
                  size_t what_n)
{
    const AVCodec *dec = avcodec_find_decoder(c->id);
    if (!dec) {
        snprintf(what, what_n, "find a %s decoder", c->name);
        return AVERROR_DECODER_NOT_FOUND;
    }
    AVCodecContext *ctx = avcodec_alloc_context3(dec);
    AVPacket *pkt = av_packet_alloc();
    int err = AVERROR(ENOMEM);
    snprintf(what, what_n, "decode a %s keyframe", c->name);
    if (!ctx || !pkt)
        goto out;
    ctx->extradata = av_mallocz((size_t)c->size + AV_INPUT_BUFFER_PADDING_SIZE);
    if (!ctx->extradata)
        goto out;
    memcpy(ctx->extradata, c->extradata, (size_t)c->size);
    ctx->extradata_size = c->size;
    ctx->thread_count = 1;
    if ((err = avcodec_open2(ctx, dec, NULL)) < 0)
        goto out;
    if ((err = av_new_packet(pkt, (int)n)) < 0)
        goto out;
    memcpy(pkt->data, p, n);
    pkt->flags = AV_PKT_FLAG_KEY;
    if ((err = avcodec_send_packet(ctx, pkt)) < 0)
        goto out;
    /* Drain: with reordering the decoder may hold the frame back. */
    if ((err = avcodec_send_packet(ctx, NULL)) < 0)
        goto out;
    err = avcodec_receive_frame(ctx, frame);
    if (err == AVERROR_EOF)
        err = AVERROR_INVALIDDATA;
out:
    av_packet_free(&pkt);
    avcodec_free_context(&ctx);
    return err;
}

static int encode_jpeg(const AVFrame *src, int width, const char *path, char *what, size_t what_n)
{
    int w = width > 0 && width < src->width ? width : src->width;
    int h = (int)((int64_t)src->height * w / src->width) & ~1;
    w &= ~1;
    if (w < 2 || h < 2) {
        snprintf(what, what_n, "scale a %dx%d picture", src->width, src->height);
        return AVERROR(EINVAL);
    }
    const AVCodec *enc = avcodec_find_encoder(AV_CODEC_ID_MJPEG);
    AVCodecContext *ctx = enc ? avcodec_alloc_context3(enc) : NULL;
    AVFrame *dst = av_frame_alloc();
    AVPacket *pkt = av_packet_alloc();
    struct SwsContext *sws = NULL;
    int err = enc ? AVERROR(ENOMEM) : AVERROR_ENCODER_NOT_FOUND;
    snprintf(what, what_n, "encode a JPEG");
    if (!ctx || !dst || !pkt)
        goto out;
    /* Full-range yuv420p rather than the deprecated yuvj420p, which would
     * make swscale warn on every call. */
    ctx->pix_fmt = AV_PIX_FMT_YUV420P;
    ctx->color_range = AVCOL_RANGE_JPEG;
    ctx->width = w;
    ctx->height = h;
    ctx->time_base = (AVRational){1, 25};
    ctx->flags |= AV_CODEC_FLAG_QSCALE;
    ctx->global_quality = FF_QP2LAMBDA * 4;
    ctx->thread_count = 1;
    if ((err = avcodec_open2(ctx, enc, NULL)) < 0)
        goto out;
    dst->format = ctx->pix_fmt;
    dst->width = w;
    dst->height = h;
    dst->color_range = AVCOL_RANGE_JPEG;
    dst->quality = ctx->global_quality;
    if ((err = av_frame_get_buffer(dst, 0)) < 0)
        goto out;
    sws = sws_getContext(src->width, src->height, src->format, w, h, AV_PIX_FMT_YUV420P,
                         SWS_BILINEAR, NULL, NULL, NULL);
    if (!sws) {
        snprintf(what, what_n, "scale a %dx%d picture", src->width, src->height);
        err = AVERROR(EINVAL);
        goto out;
    }
    const int *coef = sws_getCoefficients(SWS_CS_DEFAULT);
    int src_full = src->color_range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws, coef, src_full, coef, 1, 0, 1 << 16, 1 << 16);
    sws_scale(sws, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst->data,
              dst->linesize);
    if ((err = avcodec_send_frame(ctx, dst)) < 0 || (err = avcodec_send_frame(ctx, NULL)) < 0 ||
        (err = avcodec_receive_packet(ctx, pkt)) < 0)
        goto out;
    snprintf(what, what_n, "write %s", strrchr(path, '/') ? strrchr(path, '/') + 1 : path);
    err = kb__write_atomic(path, pkt->data, (size_t)pkt->size, 0);
out:
    sws_freeContext(sws);
    av_packet_free(&pkt);
    av_frame_free(&dst);
    avcodec_free_context(&ctx);
    return err;
}

int kb__thumb(const struct kb__codec *c, const uint8_t *p, size_t n, const char *jpeg_path,
              int width, int *w, int *h, char *what, size_t what_n)
{
    if (n == 0 || n > INT32_MAX)
        return AVERROR(EINVAL);
    AVFrame *frame = av_frame_alloc();
    if (!frame) {
        snprintf(what, what_n, "allocate a frame");
        return AVERROR(ENOMEM);
    }
    int err = decode(c, p, n, frame, what, what_n);
    if (err >= 0) {
        *w = frame->width;
        *h = frame->height;
        if (jpeg_path)
            err = encode_jpeg(frame, width, jpeg_path, what, what_n);
    }
    av_frame_free(&frame);
    return err;
}
