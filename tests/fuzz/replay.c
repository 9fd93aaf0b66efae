/* kebun: run a fuzz target over files, without libFuzzer.
 *
 * Linked with one target, it calls LLVMFuzzerTestOneInput() once per file
 * named on the command line or found directly inside a directory named
 * there (in name order, so runs repeat). This is how every build, gcc
 * included, replays the committed corpora: `meson test --suite fuzz`.
 *
 * The inputs run one after another in this process, each named on stderr
 * before it runs, so a crash names its input (the last one named). In a
 * build with LeakSanitizer the heap is checked for leaks after each input,
 * as libFuzzer does, and a leaking input is named and counted. --fork runs
 * each input in a child instead, so that one crash does not hide the
 * others (a fork and a leak check at exit cost about 0.3 s an input under
 * the sanitizers: too slow for hundreds of inputs in every suite run). A
 * missing or empty directory fails too, so a corpus that went missing
 * cannot pass as a clean run.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fuzz.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(leak_sanitizer)
#define KB_LSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(KB_LSAN)
#define KB_LSAN 1
#endif
#ifdef KB_LSAN
#include <sanitizer/lsan_interface.h>
#endif

static int fork_each; ///< --fork: each input in a child process
static long n_failed; ///< inputs that crashed or failed a check

/* Run one input in a child; 0 when it returned normally. */
static int run_child(const char *path, const uint8_t *data, size_t size)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "replay: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        LLVMFuzzerTestOneInput(data, size);
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "replay: waitpid: %s\n", strerror(errno));
            return -1;
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        fprintf(stderr, "replay: %s: FAILED (signal %d)\n", path, WTERMSIG(status));
    else
        fprintf(stderr, "replay: %s: FAILED (exit status %d)\n", path, WEXITSTATUS(status));
    return -1;
}

/* Read a whole file into an exactly sized heap block, so that reading past
 * the input is caught by the sanitizers in sanitized builds, and run it.
 * Returns 0 when it ran (n_failed counts failures), -1 when it could not. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) {
        fclose(f);
        fprintf(stderr, "replay: %s: out of memory\n", path);
        return -1;
    }
    size_t got = fread(data, 1, size, f);
    int bad = ferror(f) || got != size;
    fclose(f);
    if (bad) {
        fprintf(stderr, "replay: %s: read error\n", path);
        free(data);
        return -1;
    }
    fprintf(stderr, "replay: %s\n", path);
    if (fork_each) {
        if (run_child(path, data, size) < 0)
            n_failed++;
    } else {
        LLVMFuzzerTestOneInput(data, size);
#ifdef KB_LSAN
        /* A leak stays on the heap: after the first, every later check
         * would report it again and blame its own input. */
        static int leaked;
        if (!leaked && __lsan_do_recoverable_leak_check()) {
            fprintf(stderr, "replay: %s: FAILED (leak; the inputs after it are not "
                            "leak-checked)\n", path);
            leaked = 1;
            n_failed++;
        }
#endif
    }
    free(data);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run every regular file directly inside dir. Returns the count, or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    long ret = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 256;
            char **grown = realloc(names, cap * sizeof(*names));
            if (!grown)
                goto oom;
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name)))
            goto oom;
        n++;
    }
    closedir(d);
    d = NULL;
    qsort(names, n, sizeof(*names), by_name);

    for (size_t i = 0; i < n && ret >= 0; i++) {
        size_t len = strlen(dir) + 1 + strlen(names[i]) + 1;
        char *path = malloc(len);
        if (!path)
            goto oom;
        snprintf(path, len, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
            ret = run_file(path) < 0 ? -1 : ret + 1;
        free(path);
    }
    if (ret == 0) {
        fprintf(stderr, "replay: %s: no inputs\n", dir);
        ret = -1;
    }
    goto done;
oom:
    fprintf(stderr, "replay: %s: out of memory\n", dir);
    ret = -1;
done:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ret;
}

int main(int argc, char **argv)
{
    int first = 1;
    if (argc > 1 && strcmp(argv[1], "--fork") == 0) {
        fork_each = 1;
        first = 2;
    }
    if (argc <= first) {
        fprintf(stderr,
                "Usage: %s [--fork] DIR|FILE...\n"
                "Run the fuzz target once on each file (and each file in each DIR).\n",
                argv[0]);
        return 2;
    }
    long total = 0;
    int failed = 0;
    for (int i = first; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) < 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        long n = S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]) < 0 ? -1 : 1;
        if (n < 0)
            failed = 1;
        else
            total += n;
    }
    printf("replay: %ld inputs run, %ld failed\n", total, n_failed);
    return failed || n_failed ? 1 : 0;
}
