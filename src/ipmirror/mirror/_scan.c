/* The hot loop of a no-op or small mirror sync, in C: list one directory, lstat every entry, and
 * sort out the regular files whose stat matches the index record of the last complete sync.
 *
 *   scan(path: bytes, prev: dict[bytes, bytes], hidden: bool, completed_gen: int, racy_ns: int)
 *       -> (reused: list[bytes], reused_bytes: int, rest: list[bytes])
 *
 * reused: names of regular files whose record (kind 'f') has the same size, mtime_ns, inode and
 * ctime_ns, whose mtime is at least racy_ns older than the scan that recorded it, and whose
 * record was written by a sync that completed (gen <= completed_gen). rest: every other name
 * (directories, symlinks, changed or new files, entries that could not be stat'ed), for the
 * Python code to handle one by one exactly as before. Names starting with "." are left out
 * unless hidden. The directory is read and every entry stat'ed with the GIL released.
 *
 * The record layout is mirror/db.py's _REC (big-endian): kind c, size Q, mtime_ns q, ino Q,
 * ctime_ns q, mode I, tsize Q, scan_ns q, gen I, digest length B.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REC_HEAD 58

typedef struct {
    char *name;
    size_t len;
    int ok; /* lstat succeeded and it is a regular file */
    struct stat st;
} ent_t;

static uint64_t be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
    return v;
}

static uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void free_ents(ent_t *ents, size_t n) {
    for (size_t i = 0; i < n; i++) free(ents[i].name);
    free(ents);
}

/* Read and stat the directory without the GIL. Returns 0, or an errno value. */
static int read_dir(const char *path, int hidden, ent_t **out, size_t *count) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno;
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        int e = errno;
        close(fd);
        return e;
    }
    size_t n = 0, cap = 64;
    ent_t *ents = malloc(cap * sizeof(ent_t));
    if (ents == NULL) {
        closedir(d);
        return ENOMEM;
    }
    struct dirent *de;
    errno = 0;
    while ((de = readdir(d)) != NULL) {
        const char *nm = de->d_name;
        if (nm[0] == '.' && (nm[1] == 0 || (nm[1] == '.' && nm[2] == 0))) continue;
        if (!hidden && nm[0] == '.') continue;
        if (n == cap) {
            cap *= 2;
            ent_t *grown = realloc(ents, cap * sizeof(ent_t));
            if (grown == NULL) {
                free_ents(ents, n);
                closedir(d);
                return ENOMEM;
            }
            ents = grown;
        }
        size_t len = strlen(nm);
        ents[n].name = malloc(len + 1);
        if (ents[n].name == NULL) {
            free_ents(ents, n);
            closedir(d);
            return ENOMEM;
        }
        memcpy(ents[n].name, nm, len + 1);
        ents[n].len = len;
        ents[n].ok = 0;
        if (de->d_type == DT_REG || de->d_type == DT_UNKNOWN) {
            if (fstatat(dirfd(d), nm, &ents[n].st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(ents[n].st.st_mode))
                ents[n].ok = 1;
        }
        n++;
        errno = 0;
    }
    int e = errno;
    closedir(d);
    if (e != 0) {
        free_ents(ents, n);
        return e;
    }
    *out = ents;
    *count = n;
    return 0;
}

static int unchanged(const ent_t *e, PyObject *raw, unsigned long long completed_gen, long long racy_ns) {
    char *buf;
    Py_ssize_t blen;
    if (PyBytes_AsStringAndSize(raw, &buf, &blen) < 0) {
        PyErr_Clear();
        return 0;
    }
    if (blen < REC_HEAD || buf[0] != 'f') return 0;
    const unsigned char *p = (const unsigned char *)buf;
    uint64_t size = be64(p + 1);
    int64_t mtime = (int64_t)be64(p + 9);
    uint64_t ino = be64(p + 17);
    int64_t ctime = (int64_t)be64(p + 25);
    int64_t scan = (int64_t)be64(p + 45);
    uint32_t gen = be32(p + 53);
    int64_t fmtime = (int64_t)e->st.st_mtim.tv_sec * 1000000000LL + e->st.st_mtim.tv_nsec;
    int64_t fctime = (int64_t)e->st.st_ctim.tv_sec * 1000000000LL + e->st.st_ctim.tv_nsec;
    if (size != (uint64_t)e->st.st_size || mtime != fmtime || ino != (uint64_t)e->st.st_ino
        || ctime != fctime)
        return 0;
    if (mtime >= scan - racy_ns) return 0; /* racily clean: read it again */
    if (gen > completed_gen) return 0;     /* from a sync that never completed: Python checks it */
    return 1;
}

static PyObject *scan(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *path_obj, *prev;
    int hidden;
    unsigned long long completed_gen;
    long long racy_ns;
    if (!PyArg_ParseTuple(args, "O&O!pKL", PyUnicode_FSConverter, &path_obj, &PyDict_Type, &prev, &hidden,
                          &completed_gen, &racy_ns))
        return NULL;
    const char *path = PyBytes_AS_STRING(path_obj);
    ent_t *ents = NULL;
    size_t n = 0;
    int err;
    Py_BEGIN_ALLOW_THREADS
    err = read_dir(path, hidden, &ents, &n);
    Py_END_ALLOW_THREADS
    if (err != 0) {
        errno = err;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path_obj);
        Py_DECREF(path_obj);
        return NULL;
    }
    Py_DECREF(path_obj);
    PyObject *reused = PyList_New(0), *rest = PyList_New(0);
    unsigned long long reused_bytes = 0;
    if (reused == NULL || rest == NULL) goto fail;
    for (size_t i = 0; i < n; i++) {
        PyObject *name = PyBytes_FromStringAndSize(ents[i].name, (Py_ssize_t)ents[i].len);
        if (name == NULL) goto fail;
        int same = 0;
        if (ents[i].ok) {
            PyObject *raw = PyDict_GetItemWithError(prev, name); /* borrowed */
            if (raw == NULL && PyErr_Occurred()) {
                Py_DECREF(name);
                goto fail;
            }
            same = raw != NULL && unchanged(&ents[i], raw, completed_gen, racy_ns);
        }
        int r = PyList_Append(same ? reused : rest, name);
        Py_DECREF(name);
        if (r < 0) goto fail;
        if (same) reused_bytes += (unsigned long long)ents[i].st.st_size;
    }
    free_ents(ents, n);
    return Py_BuildValue("(NKN)", reused, reused_bytes, rest);
fail:
    free_ents(ents, n);
    Py_XDECREF(reused);
    Py_XDECREF(rest);
    return NULL;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(path, prev, hidden, completed_gen, racy_ns) -> (reused names, their bytes, other names)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_scan", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__scan(void) { return PyModule_Create(&module); }
