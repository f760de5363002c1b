#ifndef FASTGW_CSYSTEMD_SHIM_H
#define FASTGW_CSYSTEMD_SHIM_H
#include <dlfcn.h>
#include <stddef.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>

/*
 * libsystemd is not linked: it is loaded (dlopen) the first time the daemon has a service
 * manager or a journal to talk to. Linked, it and the libraries it pulls in (libgcrypt,
 * libgpg-error, liblzma, libzstd, liblz4, libcap) cost every process ~0.9 MiB of resident
 * memory at start, also when no systemd is there (containers, the benchmark).
 * The pointer types come from libsystemd's own declarations.
 */
struct fastgw_libsystemd {
    __typeof__(sd_notify) *notify;
    __typeof__(sd_listen_fds_with_names) *listen_fds_with_names;
    __typeof__(sd_watchdog_enabled) *watchdog_enabled;
    __typeof__(sd_journal_sendv) *journal_sendv;
};

/* Fills `lib`; returns NULL on success, else a message saying what is missing. */
static inline const char *fastgw_libsystemd_load(struct fastgw_libsystemd *lib) {
    void *handle = dlopen("libsystemd.so.0", RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *why = dlerror();
        return why != NULL ? why : "cannot load libsystemd.so.0";
    }
    lib->notify = (__typeof__(sd_notify) *)dlsym(handle, "sd_notify");
    lib->listen_fds_with_names = (__typeof__(sd_listen_fds_with_names) *)dlsym(handle, "sd_listen_fds_with_names");
    lib->watchdog_enabled = (__typeof__(sd_watchdog_enabled) *)dlsym(handle, "sd_watchdog_enabled");
    lib->journal_sendv = (__typeof__(sd_journal_sendv) *)dlsym(handle, "sd_journal_sendv");
    if (lib->notify == NULL || lib->listen_fds_with_names == NULL || lib->watchdog_enabled == NULL
        || lib->journal_sendv == NULL) {
        return "libsystemd.so.0 lacks sd_notify, sd_listen_fds_with_names, sd_watchdog_enabled or sd_journal_sendv";
    }
    return NULL;
}

#endif
