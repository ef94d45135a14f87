/* libFuzzer target: the settings' parsers over arbitrary text.
 *
 * The bytes are, in turn: a config file's content (written to an unlinked temporary file
 * and read through /proc/self/fd/N, so config_load_file's own fopen/getline path runs);
 * the value of every setting given to config_set (as a flag would); and "MOVIESD_..."
 * environment lines for config_load_env.
 *
 * Checked besides memory safety: a failed load or set leaves the config untouched and says
 * why in UTF-8 (the reason is printed and logged); a successful one is what config_print
 * writes back: printing the settings and loading that file gives the same settings, which
 * is what the effective-settings dump and a SIGHUP reload rely on. */
#include "fuzz.h"

#include <unistd.h>

#include "config.h"
#include "log.h"

/* The file config_load_file reads, and its name as the loader sees it. */
static int file_fd = -1;
static char file_path[64];

/* The config's value of a string-like setting. */
static const char *string_of(const struct config *c, const struct setting *s)
{
    return *(char *const *)(const void *)((const char *)c + s->offset);
}

/* The config's value of an integer, log-level or choice setting. */
static long long integer_of(const struct config *c, const struct setting *s)
{
    return *(const long long *)(const void *)((const char *)c + s->offset);
}

/* Whether every setting of a and b has the same value. */
static int config_same(const struct config *a, const struct config *b)
{
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        if (s->type == SETTING_INTEGER || s->type == SETTING_LOG_LEVEL ||
            s->type == SETTING_CHOICE) {
            if (integer_of(a, s) != integer_of(b, s))
                return 0;
        } else {
            const char *x = string_of(a, s), *y = string_of(b, s);
            if (x == NULL || y == NULL ? x != y : strcmp(x, y) != 0)
                return 0;
        }
    }
    return 1;
}

/* Makes the file's content exactly data. */
static void write_file(const void *data, size_t size)
{
    FUZZ_CHECK(ftruncate(file_fd, 0) == 0);
    FUZZ_CHECK(size == 0 || pwrite(file_fd, data, size, 0) == (ssize_t)size);
}

/* Loads the file into c, checking the all-or-nothing promise and the reason on failure. */
static int load(struct config *c)
{
    struct config before;
    char err[512];
    config_copy(&before, c);
    memset(err, 'x', sizeof err);
    int r = config_load_file(c, file_path, err, sizeof err);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r != 0) {
        FUZZ_CHECK(config_same(c, &before));
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
        FUZZ_CHECK(strncmp(err, file_path, strlen(file_path)) == 0);
    }
    config_free(&before);
    return r;
}

/* Checks that c survives config_print and a reload of what it printed. */
static void check_printed(const struct config *c)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    FUZZ_CHECK(out != NULL);
    config_print(c, out);
    FUZZ_CHECK(fclose(out) == 0);
    write_file(text, len);
    free(text);
    struct config back;
    config_init(&back);
    FUZZ_CHECK(load(&back) == 0);
    FUZZ_CHECK(config_same(&back, c));
    config_free(&back);
}

/* The bytes as a config file. */
static void fuzz_file(const uint8_t *data, size_t size)
{
    struct config c;
    config_init(&c);
    write_file(data, size);
    if (load(&c) == 0)
        check_printed(&c);
    config_free(&c);
}

/* The bytes as the value of every setting, as a flag gives it, and as a flag's name. */
static void fuzz_values(const char *value)
{
    for (size_t i = 0; i < config_settings_count; i++) {
        const struct setting *s = &config_settings[i];
        struct config c, before;
        char err[512];
        config_init(&c);
        config_copy(&before, &c);
        memset(err, 'x', sizeof err);
        int r = config_set(&c, s, value, "--fuzz", err, sizeof err);
        if (r == 0) {
            if (s->type == SETTING_INTEGER)
                FUZZ_CHECK(integer_of(&c, s) >= s->min && integer_of(&c, s) <= s->max);
            else if (s->type == SETTING_STRING || s->type == SETTING_LISTEN ||
                     s->type == SETTING_CITY_LIST)
                FUZZ_CHECK(strcmp(string_of(&c, s), value) == 0);
            check_printed(&c);
        } else {
            FUZZ_CHECK(r == -1);
            FUZZ_CHECK(config_same(&c, &before));
            FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
            FUZZ_CHECK(strncmp(err, "--fuzz: ", 8) == 0);
        }
        config_free(&before);
        config_free(&c);
    }
    /* The flag spelling: the key with dashes, and nothing else. */
    const struct setting *flag = config_find_flag(value);
    if (flag != NULL) {
        FUZZ_CHECK(strlen(value) == strlen(flag->name));
        for (size_t i = 0; value[i] != '\0'; i++)
            FUZZ_CHECK(value[i] == (flag->name[i] == '_' ? '-' : flag->name[i]));
    }
}

/* The bytes' lines as an environment, each line given a MOVIESD_ prefix. */
static void fuzz_env(const char *text)
{
    char *vars[33];
    size_t n = 0;
    for (const char *line = text; n < 32;) {
        size_t len = strcspn(line, "\n");
        vars[n] = malloc(len + sizeof "MOVIESD_");
        FUZZ_CHECK(vars[n] != NULL);
        snprintf(vars[n++], len + sizeof "MOVIESD_", "MOVIESD_%.*s", (int)len, line);
        if (line[len] == '\0')
            break;
        line += len + 1;
    }
    vars[n] = NULL;
    struct config c, before;
    char err[512];
    config_init(&c);
    config_copy(&before, &c);
    memset(err, 'x', sizeof err);
    if (config_load_env(&c, vars, err, sizeof err) == 0) {
        check_printed(&c);
    } else {
        FUZZ_CHECK(config_same(&c, &before));
        FUZZ_CHECK(fuzz_message_ok(err, sizeof err));
    }
    config_free(&before);
    config_free(&c);
    for (size_t i = 0; i < n; i++)
        free(vars[i]);
}

/* Makes the unlinked file; /proc/self/fd/N names it as long as the process lives. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(LOG_ERROR);
    const char *dir = getenv("TMPDIR");
    char name[4096];
    snprintf(name, sizeof name, "%s/moviesd-fuzz-config-XXXXXX", dir && *dir ? dir : "/tmp");
    file_fd = mkstemp(name);
    FUZZ_CHECK(file_fd >= 0);
    FUZZ_CHECK(unlink(name) == 0);
    snprintf(file_path, sizeof file_path, "/proc/self/fd/%d", file_fd);
    return 0;
}

/* One input, three ways. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_file(data, size);
    char *text = fuzz_cstring(data, size);
    fuzz_values(text);
    fuzz_env(text);
    free(text);
    return 0;
}
