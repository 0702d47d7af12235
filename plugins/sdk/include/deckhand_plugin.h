/*
 * Deckhand plugin ABI, version 1.
 *
 * A plugin is a shared library exporting one symbol, `deckhand_plugin_entry`, that returns a
 * pointer to a static `dh_plugin_api`. All data crossing the boundary is UTF-8 JSON in byte
 * buffers (see docs/plugin-abi.md for the messages). Whoever allocates a buffer frees it: the
 * host frees plugin buffers with the plugin's `free_buf`, the plugin frees host buffers with the
 * host's `free_buf`. Functions must not unwind or longjmp across the boundary. Tables are only
 * ever extended at the end; `size` tells the reader how much of the table the writer has.
 */
#ifndef DECKHAND_PLUGIN_H
#define DECKHAND_PLUGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DECKHAND_ABI_VERSION 1u
#define DECKHAND_ENTRY_SYMBOL "deckhand_plugin_entry"

/* A byte buffer. `cap` is the allocator's capacity; a C plugin may set it to `len`. */
typedef struct dh_buf {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} dh_buf;

/* Services the host offers, given to `init` and valid until `shutdown` returns. */
typedef struct dh_host_api {
    uint32_t abi_version; /* DECKHAND_ABI_VERSION */
    uint32_t size;        /* sizeof(dh_host_api) on the host side */
    const void *ctx;      /* pass back on every call */
    /* Request: JSON {"invocation": "...", "service": "http" | "kv_get" | ..., ...}.
       Answer: JSON {"ok": value} or {"error": {"code": "...", "message": "..."}}.
       Blocks the calling thread until the service answers. */
    dh_buf (*call)(const void *ctx, const uint8_t *request, size_t len);
    /* True once the invocation (UTF-8 id, not NUL-terminated) was cancelled or timed out. */
    bool (*is_cancelled)(const void *ctx, const uint8_t *invocation, size_t len);
    /* Frees a buffer returned by `call`. */
    void (*free_buf)(const void *ctx, dh_buf buf);
} dh_host_api;

/* The plugin's table. Every function but init/shutdown may run on several threads at once. */
typedef struct dh_plugin_api {
    uint32_t abi_version; /* DECKHAND_ABI_VERSION; checked before anything else is read */
    uint32_t size;        /* sizeof(dh_plugin_api) on the plugin side */
    /* JSON manifest: {"name", "version", "description", "commands": [...], "capabilities": {...}}.
       Callable before init. */
    dh_buf (*manifest)(void);
    /* Starts the plugin with its config section (JSON, `null` when absent).
       Answers {"ok": null} or {"error": {...}}. */
    dh_buf (*init)(const dh_host_api *host, const uint8_t *config, size_t len);
    /* Runs a command: JSON call in, {"ok": {"text": "...", "ephemeral": false}} or
       {"error": {"code", "message", "option"?}} out. */
    dh_buf (*invoke)(const uint8_t *call, size_t len);
    /* Autocomplete: JSON query in, {"ok": [{"name", "value"}, ...]} out (at most 25 used). */
    dh_buf (*autocomplete)(const uint8_t *query, size_t len);
    /* Frees a buffer this plugin returned. */
    void (*free_buf)(dh_buf buf);
    /* Called once before the host lets go of the plugin. */
    void (*shutdown)(void);
} dh_plugin_api;

/* The one exported symbol. */
const dh_plugin_api *deckhand_plugin_entry(void);

#ifdef __cplusplus
}
#endif

#endif /* DECKHAND_PLUGIN_H */
