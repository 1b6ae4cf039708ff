/* mkphotos.c -- make a directory of distinct, real-photo JPEGs for the ingest benchmark.
 *
 *   bench_mkphotos OUTDIR COUNT [SEED]
 *
 * Writes COUNT files OUTDIR/photo_NNNNN.jpg, each at least 1 megapixel, cut from the
 * real photos that Debian's mate-backgrounds package installs
 * (/usr/share/backgrounds/mate/{nature,abstract}/ *.jpg; override the list of
 * directories with MKPHOTOS_SRC="dir1:dir2"). Every source photo is decoded once;
 * the files made from it are crops of varying size (1024x1024 up to 1600x1200,
 * landscape and portrait where the source is tall enough) at varying offsets, with a
 * small brightness shift per file, encoded with libjpeg at quality 90. A COM marker
 * naming the file's index and the seed makes every file's bytes distinct even if two
 * crops happened to coincide, so the server's SHA-256 dedup never merges two of them.
 *
 * The output depends only on COUNT, SEED and the source photos (not on thread timing).
 * Two worker threads (one if the machine has one core) each hold one decoded source
 * at a time, so memory stays at two decoded photos (the largest, 5640x3172, is 54 MB).
 * Files are written under a ".tmp" name and renamed, so a crash never leaves a
 * half-written photo under its real name.
 */
#include "core/fsutil.h"
#include "core/timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>

#define MIN_SIDE 1024
#define QUALITY 90
#define MAX_SOURCES 256

typedef struct {
    char path[1024];
    int width, height;   /* from the header */
    int first, count;    /* output files first .. first+count-1 come from this source */
} source;

static const struct { int w, h; } sizes[] = {
    {1024, 1024}, {1152, 1024}, {1280, 960}, {1280, 1024}, {1360, 1024}, {1440, 1080},
    {1536, 1024}, {1600, 1200}, {1200, 1600}, {1080, 1440}, {1024, 1280}, {960, 1280},
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static source sources[MAX_SOURCES];
static int nsources;
static int order[MAX_SOURCES];   /* sources, largest first (scheduling order) */
static int next_job;
static pthread_mutex_t job_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *outdir;
static uint64_t seed;
static int failed;               /* set by any worker on error; read under job_lock */
static uint64_t total_bytes;

/* ---- libjpeg error handling: longjmp out instead of exit() ---- */

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr_mgr;

static void jerr_exit(j_common_ptr cinfo) {
    jerr_mgr *e = (jerr_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jb, 1);
}

static void jerr_silent(j_common_ptr cinfo) { (void)cinfo; }

/* ---- deterministic randomness per (seed, file index) ---- */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rand_below(uint64_t *s, uint64_t n) { return n ? splitmix64(s) % n : 0; }

/* ---- sources ---- */

static int read_header(source *src) {
    FILE *f = fopen(src->path, "rb");
    if (!f) return -1;
    struct jpeg_decompress_struct cinfo;
    jerr_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jerr_exit;
    jerr.pub.output_message = jerr_silent;
    if (setjmp(jerr.jb)) {
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    src->width = (int)cinfo.image_width;
    src->height = (int)cinfo.image_height;
    int ok = cinfo.jpeg_color_space == JCS_YCbCr || cinfo.jpeg_color_space == JCS_RGB ||
             cinfo.jpeg_color_space == JCS_GRAYSCALE;
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    return ok ? 0 : -1;
}

static int has_jpg_ext(const char *name) {
    size_t n = strlen(name);
    return (n > 4 && (strcasecmp(name + n - 4, ".jpg") == 0)) ||
           (n > 5 && strcasecmp(name + n - 5, ".jpeg") == 0);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void scan_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    char *names[MAX_SOURCES];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_SOURCES)
        if (de->d_name[0] != '.' && has_jpg_ext(de->d_name)) names[n++] = strdup(de->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);  /* stable order: same output every run */
    for (int i = 0; i < n; i++) {
        if (names[i] && nsources < MAX_SOURCES) {
            source *src = &sources[nsources];
            snprintf(src->path, sizeof src->path, "%s/%s", dir, names[i]);
            if (read_header(src) == 0 && src->width >= MIN_SIDE && src->height >= MIN_SIDE)
                nsources++;
            else
                fprintf(stderr, "mkphotos: skipping %s (unreadable, unsupported or smaller than %dx%d)\n",
                        src->path, MIN_SIDE, MIN_SIDE);
        }
        free(names[i]);
    }
}

/* Decode a whole source to packed RGB. Returns malloc'd pixels or NULL. */
static unsigned char *decode_rgb(const source *src, char *msg, size_t msgsz) {
    FILE *f = fopen(src->path, "rb");
    if (!f) {
        snprintf(msg, msgsz, "%s", strerror(errno));
        return NULL;
    }
    struct jpeg_decompress_struct cinfo;
    jerr_mgr jerr;
    unsigned char *volatile pix = NULL;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jerr_exit;
    jerr.pub.output_message = jerr_silent;
    if (setjmp(jerr.jb)) {
        snprintf(msg, msgsz, "%s", jerr.msg);
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        free(pix);
        return NULL;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, f);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t stride = (size_t)cinfo.output_width * 3;
    pix = malloc(stride * cinfo.output_height);
    if (!pix) {
        snprintf(msg, msgsz, "out of memory");
        jpeg_destroy_decompress(&cinfo);
        fclose(f);
        return NULL;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW rows[16];
        int n = 0;
        for (; n < 16 && cinfo.output_scanline + (JDIMENSION)n < cinfo.output_height; n++)
            rows[n] = pix + stride * (cinfo.output_scanline + (JDIMENSION)n);
        jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    fclose(f);
    return pix;
}

/* ---- one output file ---- */

/* Crop (x,y,w,h) of the decoded source, shift brightness by delta, write as JPEG. */
static int write_crop(const source *src, const unsigned char *pix, int index, int x, int y,
                      int w, int h, int delta, unsigned char *row, char *msg, size_t msgsz) {
    char tmp[4096], final[4096], comment[128];
    snprintf(final, sizeof final, "%s/photo_%05d.jpg", outdir, index);
    snprintf(tmp, sizeof tmp, "%s/.photo_%05d.jpg.tmp", outdir, index);
    snprintf(comment, sizeof comment, "tally bench photo %d seed %llu from %s", index,
             (unsigned long long)seed, tly_basename(src->path));

    unsigned char lut[256];
    for (int v = 0; v < 256; v++) {
        int t = v + delta;
        lut[v] = (unsigned char)(t < 0 ? 0 : t > 255 ? 255 : t);
    }

    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(msg, msgsz, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    struct jpeg_compress_struct cinfo;
    jerr_mgr jerr;
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = jerr_exit;
    jerr.pub.output_message = jerr_silent;
    if (setjmp(jerr.jb)) {
        snprintf(msg, msgsz, "%s: %s", tmp, jerr.msg);
        jpeg_destroy_compress(&cinfo);
        fclose(f);
        unlink(tmp);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_stdio_dest(&cinfo, f);
    cinfo.image_width = (JDIMENSION)w;
    cinfo.image_height = (JDIMENSION)h;
    cinfo.input_components = 3;
    cinfo.in_color_space = JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, QUALITY, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    jpeg_write_marker(&cinfo, JPEG_COM, (const JOCTET *)comment, (unsigned)strlen(comment));
    size_t stride = (size_t)src->width * 3;
    for (int r = 0; r < h; r++) {
        const unsigned char *in = pix + stride * (size_t)(y + r) + (size_t)x * 3;
        for (int i = 0; i < w * 3; i++) row[i] = lut[in[i]];
        JSAMPROW rp = row;
        jpeg_write_scanlines(&cinfo, &rp, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    long size = ftell(f);
    if (ferror(f) | fclose(f)) {
        snprintf(msg, msgsz, "%s: write failed: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, final) != 0) {
        snprintf(msg, msgsz, "rename %s: %s", final, strerror(errno));
        unlink(tmp);
        return -1;
    }
    pthread_mutex_lock(&job_lock);
    total_bytes += (uint64_t)(size > 0 ? size : 0);
    pthread_mutex_unlock(&job_lock);
    return 0;
}

static int make_from_source(const source *src, char *msg, size_t msgsz) {
    unsigned char *pix = decode_rgb(src, msg, msgsz);
    if (!pix) return -1;
    unsigned char *row = malloc((size_t)1600 * 3);
    if (!row) {
        free(pix);
        snprintf(msg, msgsz, "out of memory");
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < src->count && rc == 0; k++) {
        int index = src->first + k;
        uint64_t rs = seed * 0x100000001b3ULL + (uint64_t)index;
        /* Pick a size uniformly among those the source is big enough for (1024x1024
         * always fits: sources smaller than that were skipped). */
        size_t fit[NSIZES], nfit = 0;
        for (size_t c = 0; c < NSIZES; c++)
            if (sizes[c].w <= src->width && sizes[c].h <= src->height) fit[nfit++] = c;
        size_t si = fit[rand_below(&rs, nfit)];
        int w = sizes[si].w, h = sizes[si].h;
        int x = (int)rand_below(&rs, (uint64_t)(src->width - w + 1));
        int y = (int)rand_below(&rs, (uint64_t)(src->height - h + 1));
        int delta = (int)rand_below(&rs, 17) - 8;
        rc = write_crop(src, pix, index, x, y, w, h, delta, row, msg, msgsz);
    }
    free(row);
    free(pix);
    return rc;
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&job_lock);
        int j = failed ? nsources : next_job++;
        pthread_mutex_unlock(&job_lock);
        if (j >= nsources) return NULL;
        const source *src = &sources[order[j]];
        if (src->count == 0) continue;
        char msg[8192] = "";
        if (make_from_source(src, msg, sizeof msg) != 0) {
            fprintf(stderr, "mkphotos: %s: %s\n", src->path, msg);
            pthread_mutex_lock(&job_lock);
            failed = 1;
            pthread_mutex_unlock(&job_lock);
            return NULL;
        }
    }
}

static int cmp_pixels_desc(const void *a, const void *b) {
    const source *x = &sources[*(const int *)a], *y = &sources[*(const int *)b];
    long long px = (long long)x->width * x->height, py = (long long)y->width * y->height;
    return px < py ? 1 : px > py ? -1 : (*(const int *)a - *(const int *)b);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s OUTDIR COUNT [SEED]\n"
                        "  makes COUNT distinct >= 1 MP JPEGs from the mate-backgrounds photos\n",
                argv[0]);
        return 2;
    }
    outdir = argv[1];
    char *end;
    long count = strtol(argv[2], &end, 10);
    if (*end || count < 1 || count > 1000000) {
        fprintf(stderr, "mkphotos: COUNT must be 1..1000000\n");
        return 2;
    }
    seed = 1;
    if (argc == 4) {
        seed = strtoull(argv[3], &end, 10);
        if (*end || !argv[3][0]) {
            fprintf(stderr, "mkphotos: SEED must be a number\n");
            return 2;
        }
    }

    const char *srcdirs = getenv("MKPHOTOS_SRC");
    if (!srcdirs || !*srcdirs)
        srcdirs = "/usr/share/backgrounds/mate/nature:/usr/share/backgrounds/mate/abstract";
    char *dirs = strdup(srcdirs), *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) scan_dir(d);
    free(dirs);
    if (nsources == 0) {
        fprintf(stderr, "mkphotos: no usable source JPEGs in %s (apt-get install mate-backgrounds)\n",
                srcdirs);
        return 1;
    }

    /* Spread the files evenly over the sources, numbered in source order. */
    int first = 0;
    for (int s = 0; s < nsources; s++) {
        sources[s].first = first;
        sources[s].count = (int)(count / nsources + (s < count % nsources ? 1 : 0));
        first += sources[s].count;
        order[s] = s;
    }
    qsort(order, (size_t)nsources, sizeof order[0], cmp_pixels_desc);

    if (tly_mkdirs(outdir, 0755) != 0) {
        fprintf(stderr, "mkphotos: mkdir %s: %s\n", outdir, strerror(errno));
        return 1;
    }

    int64_t t0 = tly_mono_ns();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nthreads = ncpu >= 2 ? 2 : 1;
    pthread_t th[2];
    int started = 0;
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&th[i], NULL, worker, NULL) == 0) started++;
    if (started == 0) worker(NULL);
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    if (failed) return 1;

    double secs = (double)(tly_mono_ns() - t0) / 1e9;
    fprintf(stderr, "mkphotos: %ld files (%.1f MB) from %d source photos in %.2f s\n", count,
            (double)total_bytes / 1e6, nsources, secs);
    return 0;
}
