// kprof: GPU kernel times of any CUDA process, from the GPU itself (CUPTI activity records), for the benches
// (docs/performance.md, session 13: ORT's own profile gives host times, which follow the GPU when its queue is
// full, so they cannot say where a step's GPU time goes).
//
// A CUDA injection library: the driver loads it at cuInit when CUDA_INJECTION64_PATH names it and calls
// InitializeInjection. It opens CUPTI with dlopen (KPROF_CUPTI, else libcupti.so.13, else libcupti.so), records every
// kernel, memcpy and memset with its GPU start and end, and at exit writes them to $KPROF_OUT.<pid> (a temporary file
// renamed into place): a header line, then `N <id> <name>` per distinct name, then `K <start ns> <end ns> <stream>
// <name id>` per record. tools/bench/src/kprof.ts splits the records into training steps and sums them.
//   KPROF_OUT=/root/kp-lora CUDA_INJECTION64_PATH=/root/app/kprof/libkprof.so node dist/train-bench.mjs ...
// Built by tools/bench/kprof/build.sh (gcc against the CUDA toolkit's CUPTI headers; no link to CUPTI).
#include <cupti.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef CUptiResult (*RegisterFn)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
typedef CUptiResult (*EnableFn)(CUpti_ActivityKind);
typedef CUptiResult (*FlushAllFn)(uint32_t);
typedef CUptiResult (*FlushPeriodFn)(uint32_t);
typedef CUptiResult (*NextRecordFn)(uint8_t*, size_t, CUpti_Activity**);
typedef CUptiResult (*ResultStringFn)(CUptiResult, const char**);

static struct {
  RegisterFn registerCallbacks;
  EnableFn enable;
  FlushAllFn flushAll;
  FlushPeriodFn flushPeriod;
  NextRecordFn nextRecord;
  ResultStringFn resultString;
} cupti;

typedef struct {
  uint64_t start, end;
  uint32_t stream, name;
} Rec;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static Rec* recs;
static size_t nRecs, capRecs;
static char** names;
static size_t nNames, capNames;
static uint32_t* table;  // open addressing: name id + 1, 0 empty
static size_t capTable;
static unsigned long long buffersLost, invalidRecords, incompleteBuffers;
static int failed;  // out of memory while recording: nothing more is recorded, the file says so
static char outBase[4096];

static uint64_t hashName(const char* s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

/** The id of a kernel name, interned (the caller holds the lock); UINT32_MAX when out of memory. */
static uint32_t intern(const char* s) {
  if (nNames * 2 >= capTable) {
    size_t cap = capTable ? capTable * 2 : 4096;
    uint32_t* t = calloc(cap, sizeof *t);
    if (!t) return UINT32_MAX;
    for (size_t i = 0; i < nNames; i++) {
      size_t j = hashName(names[i]) & (cap - 1);
      while (t[j]) j = (j + 1) & (cap - 1);
      t[j] = (uint32_t)i + 1;
    }
    free(table);
    table = t;
    capTable = cap;
  }
  size_t j = hashName(s) & (capTable - 1);
  while (table[j]) {
    if (strcmp(names[table[j] - 1], s) == 0) return table[j] - 1;
    j = (j + 1) & (capTable - 1);
  }
  if (nNames == capNames) {
    char** n = realloc(names, (capNames ? capNames * 2 : 1024) * sizeof *names);
    if (!n) return UINT32_MAX;
    names = n;
    capNames = capNames ? capNames * 2 : 1024;
  }
  names[nNames] = strdup(s);
  if (!names[nNames]) return UINT32_MAX;
  table[j] = (uint32_t)nNames + 1;
  return (uint32_t)nNames++;
}

/** Appends a record (the caller holds the lock). CUPTI leaves start/end 0 where it could not time a record: counted, not kept. */
static void add(uint64_t start, uint64_t end, uint32_t stream, const char* name) {
  if (failed) return;
  if (start == 0 || end < start) {
    invalidRecords++;
    return;
  }
  if (nRecs == capRecs) {
    Rec* r = realloc(recs, (capRecs ? capRecs * 2 : 1 << 16) * sizeof *recs);
    if (!r) {
      failed = 1;
      return;
    }
    recs = r;
    capRecs = capRecs ? capRecs * 2 : 1 << 16;
  }
  const uint32_t id = intern(name);
  if (id == UINT32_MAX) {
    failed = 1;
    return;
  }
  recs[nRecs++] = (Rec){start, end, stream, id};
}

static const char* memcpyName(uint8_t kind) {
  switch (kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD: return "[memcpy HtoD]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH: return "[memcpy DtoH]";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD: return "[memcpy DtoD]";
    default: return "[memcpy other]";
  }
}

enum { kBufferBytes = 4 << 20 };

static void CUPTIAPI bufferRequested(uint8_t** buffer, size_t* size, size_t* maxNumRecords) {
  // 8-byte alignment is what CUPTI requires of activity buffers.
  *buffer = aligned_alloc(8, kBufferBytes);
  *size = *buffer ? kBufferBytes : 0;
  *maxNumRecords = 0;
}

static void CUPTIAPI bufferCompleted(CUcontext ctx, uint32_t streamId, uint8_t* buffer, size_t size, size_t validSize) {
  (void)ctx;
  (void)streamId;
  (void)size;
  if (!buffer) {
    __atomic_add_fetch(&buffersLost, 1, __ATOMIC_RELAXED);
    return;
  }
  pthread_mutex_lock(&lock);
  CUpti_Activity* r = NULL;
  CUptiResult rc;
  // Kernel10 / Memcpy6 / Memset4 are CUDA 13's CUPTI records; CUDA 12's CUPTI (Kernel9, Memcpy5, Memset4) has
  // start, end, streamId and name at the same offsets, so either library's records read right here.
  while ((rc = cupti.nextRecord(buffer, validSize, &r)) == CUPTI_SUCCESS) {
    if (r->kind == CUPTI_ACTIVITY_KIND_KERNEL || r->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) {
      const CUpti_ActivityKernel10* k = (const CUpti_ActivityKernel10*)r;
      add(k->start, k->end, k->streamId, k->name ? k->name : "[unnamed kernel]");
    } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMCPY) {
      const CUpti_ActivityMemcpy6* m = (const CUpti_ActivityMemcpy6*)r;
      add(m->start, m->end, m->streamId, memcpyName(m->copyKind));
    } else if (r->kind == CUPTI_ACTIVITY_KIND_MEMSET) {
      const CUpti_ActivityMemset4* m = (const CUpti_ActivityMemset4*)r;
      add(m->start, m->end, m->streamId, "[memset]");
    }
  }
  if (rc != CUPTI_ERROR_MAX_LIMIT_REACHED) incompleteBuffers++;  // stopped at a record CUPTI had not finished: the rest of the buffer is lost
  pthread_mutex_unlock(&lock);
  free(buffer);
}

/** Writes the records to KPROF_OUT.<pid> (temporary file, then rename); a process without records writes nothing. */
static void writeOut(void) {
  cupti.flushAll(1);
  pthread_mutex_lock(&lock);
  if (nRecs > 0) {
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s.%d", outBase, (int)getpid());
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE* f = fopen(tmp, "w");
    if (!f) {
      fprintf(stderr, "kprof: cannot write %s\n", tmp);
    } else {
      fprintf(f, "# kprof 1 pid %d records %zu names %zu buffers_lost %llu invalid %llu incomplete %llu out_of_memory %d\n", (int)getpid(), nRecs, nNames,
              buffersLost, invalidRecords, incompleteBuffers, failed);
      for (size_t i = 0; i < nNames; i++) fprintf(f, "N %zu %s\n", i, names[i]);
      for (size_t i = 0; i < nRecs; i++)
        fprintf(f, "K %llu %llu %u %u\n", (unsigned long long)recs[i].start, (unsigned long long)recs[i].end, recs[i].stream, recs[i].name);
      if (fclose(f) != 0 || rename(tmp, path) != 0) fprintf(stderr, "kprof: cannot write %s\n", path);
      else fprintf(stderr, "kprof: %zu records -> %s\n", nRecs, path);
    }
  }
  pthread_mutex_unlock(&lock);
}

/** Whether a CUPTI call succeeded; if not, says which and why (the process then runs without a profile). */
static int ok(CUptiResult rc, const char* what) {
  if (rc == CUPTI_SUCCESS) return 1;
  const char* s = "?";
  if (cupti.resultString) cupti.resultString(rc, &s);
  fprintf(stderr, "kprof: %s failed: %s (no profile for this process)\n", what, s);
  return 0;
}

#define SYM(field, name)                                                            \
  do {                                                                              \
    *(void**)&cupti.field = dlsym(h, name);                                         \
    if (!cupti.field) {                                                             \
      fprintf(stderr, "kprof: %s lacks %s (no profile for this process)\n", lib, name); \
      return 0;                                                                     \
    }                                                                               \
  } while (0)

/**
 * Called by the CUDA driver at cuInit (CUDA_INJECTION64_PATH); 1 = success. A failure here is reported on stderr
 * and the process runs on without a profile (no exit inside cuInit); kprof.ts then finds no records file.
 */
int InitializeInjection(void) {
  const char* out = getenv("KPROF_OUT");
  if (!out || !*out) {
    fprintf(stderr, "kprof: KPROF_OUT is not set (the path prefix of the records file)\n");
    return 0;
  }
  snprintf(outBase, sizeof outBase, "%s", out);
  const char* env = getenv("KPROF_CUPTI");
  const char* tries[] = {env && *env ? env : "libcupti.so.13", "libcupti.so"};
  void* h = NULL;
  const char* lib = NULL;
  for (int i = 0; i < 2 && !h; i++) h = dlopen(lib = tries[i], RTLD_NOW | RTLD_GLOBAL);
  if (!h) {
    fprintf(stderr, "kprof: cannot open CUPTI (%s); set KPROF_CUPTI to libcupti.so's path (no profile for this process)\n", dlerror());
    return 0;
  }
  SYM(registerCallbacks, "cuptiActivityRegisterCallbacks");
  SYM(enable, "cuptiActivityEnable");
  SYM(flushAll, "cuptiActivityFlushAll");
  SYM(flushPeriod, "cuptiActivityFlushPeriod");
  SYM(nextRecord, "cuptiActivityGetNextRecord");
  SYM(resultString, "cuptiGetResultString");
  if (!ok(cupti.registerCallbacks(bufferRequested, bufferCompleted), "cuptiActivityRegisterCallbacks") ||
      !ok(cupti.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)") ||
      !ok(cupti.enable(CUPTI_ACTIVITY_KIND_MEMCPY), "cuptiActivityEnable(MEMCPY)") ||
      !ok(cupti.enable(CUPTI_ACTIVITY_KIND_MEMSET), "cuptiActivityEnable(MEMSET)") || !ok(cupti.flushPeriod(1000), "cuptiActivityFlushPeriod"))
    return 0;
  atexit(writeOut);
  return 1;
}
