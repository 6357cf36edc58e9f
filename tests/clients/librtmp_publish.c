/* Test client for moim's RTMP ingest: publishes an FLV file with librtmp, the RTMP library
 * family OBS's output comes from (its handshake, connect object and publish sequence differ from
 * ffmpeg's native client), in real time by tag timestamps. Built and run by tests/it/live.rs.
 * Usage: librtmp_publish URL FILE.flv; exit 0 when every tag was sent. */
#include <librtmp/rtmp.h>
#include <librtmp/log.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000LL + t.tv_nsec / 1000000; }

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  FILE *f = fopen(argv[2], "rb"); if (!f) return 2;
  fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc(n); if (fread(buf, 1, n, f) != (size_t)n) return 2;
  RTMP_LogSetLevel(RTMP_LOGWARNING);
  RTMP *r = RTMP_Alloc(); RTMP_Init(r);
  if (!RTMP_SetupURL(r, argv[1])) { fprintf(stderr, "bad url\n"); return 1; }
  RTMP_EnableWrite(r);
  if (!RTMP_Connect(r, NULL)) { fprintf(stderr, "connect failed\n"); return 1; }
  if (!RTMP_ConnectStream(r, 0)) { fprintf(stderr, "publish refused\n"); return 1; }
  long pos = 13; /* FLV header + first previous-tag size */
  long long start = now_ms();
  int tags = 0;
  while (pos + 11 <= n) {
    unsigned size = (buf[pos+1] << 16) | (buf[pos+2] << 8) | buf[pos+3];
    unsigned ts = (buf[pos+4] << 16) | (buf[pos+5] << 8) | buf[pos+6] | (buf[pos+7] << 24);
    long total = 11 + size + 4;
    if (pos + total > n) break;
    long long due = start + ts;
    while (now_ms() < due) usleep(2000);
    if (RTMP_Write(r, (const char *)buf + pos, total) <= 0) { fprintf(stderr, "write failed after %d tags\n", tags); return 1; }
    tags++;
    pos += total;
  }
  fprintf(stderr, "sent %d tags\n", tags);
  RTMP_Close(r); RTMP_Free(r);
  return 0;
}
