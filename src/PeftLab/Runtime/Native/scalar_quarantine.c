/*
 * PeftLab's scalar quarantine: delays TorchSharp's frees of c10::Scalar objects by two seconds.
 *
 * Why: TorchSharp 0.107 passes a Scalar to libtorch as `scalar.Handle` with no GC.KeepAlive, and creates
 * Scalars implicitly and never disposes them (every `tensor + tensor` builds an alpha of 1; every
 * `tensor * 0.5` builds one for 0.5). Once the handle is read the managed Scalar is unreachable, so a
 * garbage collection started by *another* thread while libtorch is inside the call lets the finalizer thread
 * free the Scalar that libtorch is about to read: the call then fails ("Unknown scalar type", "Expected false
 * to be true") or, when the freed block has already been reused, silently computes with another value.
 * Measured: 13 failures in 444,400 scalar operations in 20 s with one allocating thread beside the compute
 * thread; 0 in 950,400 without it (tests/PeftLab.Tests/Runtime/ScalarQuarantineTests.cs repeats this).
 * Upstream: dotnet/TorchSharp PRs 1434 and 1496 (dispose implicit Scalars) were open when this was written.
 *
 * How: this library is loaded after libLibTorchSharp.so (which it names as DT_NEEDED, matched by soname to the
 * copy PeftLab loaded) and is what TorchSharp's P/Invokes for "LibTorchSharp" resolve to. dlsym on it finds its
 * own THSTorch_dispose_scalar first and every other symbol in the bridge. A disposed Scalar is parked in a ring
 * and only really freed once it has been parked for HOLD_NS, so a Scalar freed while a call still reads it stays
 * valid memory for far longer than any call takes. Memory held is bounded by the ring (CAPACITY entries of 32
 * bytes each at most): when the ring is full the oldest entry is freed early.
 *
 * Build (the shipped binary is this command's output; tests rebuild and compare when the same gcc is present):
 *   bash src/PeftLab/Runtime/Native/build.sh
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CAPACITY (1u << 18)
#define HOLD_NS 2000000000ull

typedef void (*dispose_fn)(void *);

static void *parked[CAPACITY];
static uint64_t parked_at[CAPACITY];
static size_t next_slot, parked_count;
static uint64_t total_parked;
static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;
static dispose_fn bridge_dispose;

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* The bridge's own function: looked up by soname in the already-loaded bridge, never by global search. */
static dispose_fn find_bridge_dispose(void)
{
    void *bridge = dlopen("libLibTorchSharp.so", RTLD_NOW | RTLD_NOLOAD);
    return bridge ? (dispose_fn)dlsym(bridge, "THSTorch_dispose_scalar") : NULL;
}

/* Called by TorchSharp's Scalar.Dispose and its finalizer in place of the bridge's function. */
void THSTorch_dispose_scalar(void *scalar)
{
    if (scalar == NULL) return;
    uint64_t now = now_ns();
    pthread_mutex_lock(&gate);
    if (bridge_dispose == NULL) bridge_dispose = find_bridge_dispose();
    while (parked_count > 0)
    {
        size_t oldest = (next_slot + CAPACITY - parked_count) % CAPACITY;
        if (parked_count < CAPACITY && now - parked_at[oldest] < HOLD_NS) break;
        if (bridge_dispose != NULL) bridge_dispose(parked[oldest]);
        parked_count--;
    }
    parked[next_slot] = scalar;
    parked_at[next_slot] = now;
    next_slot = (next_slot + 1) % CAPACITY;
    parked_count++;
    total_parked++;
    pthread_mutex_unlock(&gate);
}

/* For `peftlab doctor` and the tests: how many Scalars went through the quarantine, and how many are parked. */
uint64_t peftlab_quarantine_total(void)
{
    pthread_mutex_lock(&gate);
    uint64_t n = total_parked;
    pthread_mutex_unlock(&gate);
    return n;
}

uint64_t peftlab_quarantine_parked(void)
{
    pthread_mutex_lock(&gate);
    uint64_t n = parked_count;
    pthread_mutex_unlock(&gate);
    return n;
}

/* 1 when the bridge's own dispose function was found (so parked Scalars are really freed). */
int peftlab_quarantine_bound(void)
{
    pthread_mutex_lock(&gate);
    if (bridge_dispose == NULL) bridge_dispose = find_bridge_dispose();
    int bound = bridge_dispose != NULL;
    pthread_mutex_unlock(&gate);
    return bound;
}
