/* segment - append-only body files of the queue */
#include "queue/segment.h"
#include "util/crc32c.h"
#include "util/fault.h"
#include "util/xalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#define SEGMENT_FS_EXT 0xEF53u		/* ext2, ext3, ext4 */
#define SEGMENT_FS_XFS 0x58465342u

static const char segment_magic[4] = { 'E', 'T', 'Q', '2' };

#define SEGMENT_PEND_KEEP (1u << 20)	/* gathering memory kept between
					 * batches at most */

static int segment_pend_write(struct segment_writer *w);

void segment_path(struct buf *out, const char *dir, uint32_t id)
{
	buf_printf(out, "%s/%08X.seg", dir, (unsigned)id);
}

void segment_spare_path(struct buf *out, const char *dir)
{
	buf_printf(out, "%s/%s", dir, SEGMENT_SPARE);
}

/* segment_overwrites_in_place - a file system on which writing over
 * written blocks needs no metadata (not copy-on-write, not tmpfs) */
static bool segment_overwrites_in_place(int dirfd)
{
	struct statfs sf;

	if (fstatfs(dirfd, &sf) != 0)
		return false;
	return (unsigned long)sf.f_type == SEGMENT_FS_EXT ||
	    (unsigned long)sf.f_type == SEGMENT_FS_XFS;
}

int segment_writer_init(struct segment_writer *w, const char *dir,
    uint32_t next_id, bool shared)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	w->id = next_id;
	w->dir = strdup(dir);
	if (w->dir == NULL)
		return ENOMEM;
	w->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->dirfd < 0) {
		int e = errno;

		free(w->dir);
		w->dir = NULL;
		return e;
	}
	w->shared_flush = shared && segment_overwrites_in_place(w->dirfd);
	if (!w->shared_flush) {		/* a spare left from another setup */
		struct buf sp = BUF_INIT;

		segment_spare_path(&sp, dir);
		(void)unlink(sp.p);
		buf_free(&sp);
	}
	return 0;
}

/* segment_pend_drop - forget what was gathered (written, or lost with a
 * broken writer); a buffer grown by a huge envelope is given back */
static void segment_pend_drop(struct segment_writer *w)
{
	if (w->pend_meta.cap > SEGMENT_PEND_KEEP)
		buf_free(&w->pend_meta);
	buf_reset(&w->pend_meta);
	w->npend = 0;
}

void segment_writer_close(struct segment_writer *w)
{
	buf_free(&w->pend_meta);
	free(w->pend);
	if (w->fd >= 0)
		close(w->fd);
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->dir);
	memset(w, 0, sizeof(*w));
	w->fd = w->dirfd = -1;
}

/* segment_reuse_spare - turn the spare into file p: its blocks are
 * written (no holes), so [0, size) is prepared space.  -1 if none */
static int segment_reuse_spare(struct segment_writer *w, const char *p)
{
	struct buf sp = BUF_INIT;
	struct stat st;
	int fd = -1;

	segment_spare_path(&sp, w->dir);
	if (w->shared_flush && rename(sp.p, p) == 0) {
		fd = open(p, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			(void)unlink(p);	/* the caller creates it anew */
		else if (fstat(fd, &st) == 0 &&
		    (uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size)
			w->ready = (uint64_t)st.st_size;
	}
	buf_free(&sp);
	return fd;
}

/* segment_open_next - start a fresh file; a failed one is never reused.
 * Records of this batch in the current file are synced first. */
static int segment_open_next(struct segment_writer *w)
{
	struct buf p = BUF_INIT;
	int fd;

	if (w->fd >= 0) {
		int e;

		if ((e = segment_pend_write(w)) != 0)
			return e;
		w->ever_broken |= w->broken;
		if (!w->broken && w->synced < w->off && fdatasync(w->fd) != 0) {
			w->broken = true;
			return errno;
		}
		close(w->fd);
		w->fd = -1;
		w->id++;
	}
	w->ready = 0;
	segment_path(&p, w->dir, w->id);
	fd = segment_reuse_spare(w, p.p);
	if (fd < 0)
		fd = open(p.p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	buf_free(&p);
	if (fd < 0)
		return errno;
	w->fd = fd;
	w->off = 0;
	w->pend_at = 0;
	w->synced = 0;
	w->need_dirsync = true;
	w->broken = false;
	w->prep_failed = false;
	return 0;
}

/* segment_pwritev_all - every byte of n vectors at off (they are
 * consumed: a short write moves them on) */
static int segment_pwritev_all(int fd, struct iovec *v, int n, uint64_t off)
{
	for (;;) {
		ssize_t r;

		while (n > 0 && v->iov_len == 0) {	/* nothing to write */
			v++;
			n--;
		}
		if (n == 0)
			break;
		r = pwritev(fd, v, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		if (r == 0)
			return EIO;
		off += (uint64_t)r;
		while (n > 0 && (size_t)r >= v->iov_len) {
			r -= (ssize_t)v->iov_len;
			v++;
			n--;
		}
		if (n > 0) {
			v->iov_base = (char *)v->iov_base + r;
			v->iov_len -= (size_t)r;
		}
	}
	return 0;
}

static int segment_pwrite_all(int fd, const void *p, size_t n, uint64_t off)
{
	struct iovec v = { (void *)(uintptr_t)p, n };

	return segment_pwritev_all(fd, &v, 1, off);
}

static void segment_pend_add(struct segment_writer *w, const void *p,
    size_t meta, size_t len)
{
	if (w->npend == w->pend_cap) {
		w->pend_cap = w->pend_cap ? w->pend_cap * 2 : 48;
		w->pend = xrealloc(w->pend, w->pend_cap * sizeof(*w->pend));
	}
	w->pend[w->npend++] = (struct segment_piece){ p, meta, len };
}

/* segment_pend_meta - copy n bytes into pend_meta, gathered as a piece */
static void segment_pend_meta(struct segment_writer *w, const void *p,
    size_t n)
{
	size_t at = w->pend_meta.len;

	buf_append(&w->pend_meta, p, n);
	segment_pend_add(w, NULL, at, n);
}

/* segment_pend_write - write what was gathered: one pwritev for up to
 * 64 records.  An error breaks the writer */
static int segment_pend_write(struct segment_writer *w)
{
	struct iovec v[192];
	size_t i = 0, n, len;
	int e = 0;

	while (i < w->npend && e == 0) {
		for (n = 0, len = 0; n < sizeof(v) / sizeof(v[0]) &&
		    i < w->npend; n++, i++) {
			const struct segment_piece *pc = &w->pend[i];

			v[n].iov_base = (void *)(uintptr_t)(pc->p ? pc->p :
			    w->pend_meta.p + pc->meta);
			v[n].iov_len = pc->len;
			len += pc->len;
		}
		e = segment_pwritev_all(w->fd, v, (int)n, w->pend_at);
		w->pend_at += len;
	}
	segment_pend_drop(w);
	w->pend_at = w->off;
	if (e != 0)
		w->broken = true;
	return e;
}

/* segment_pread_all - len bytes at off, or EBADMSG when the file ends */
static int segment_pread_all(int fd, void *p, size_t len, uint64_t off)
{
	char *s = p;

	while (len > 0) {
		ssize_t r = pread(fd, s, len, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EBADMSG;
		s += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static void segment_put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

static uint32_t segment_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

/* the fields of a record's header (segment.h) */
struct segment_hdr {
	uint64_t len, id;
	uint32_t crc, seg, envlen, envcrc;
};

static void segment_header(unsigned char h[SEGMENT_HDR_LEN],
    const struct segment_hdr *f)
{
	memcpy(h, segment_magic, 4);
	segment_put32(h + 4, (uint32_t)f->len);
	segment_put32(h + 8, (uint32_t)f->id);
	segment_put32(h + 12, (uint32_t)(f->id >> 32));
	segment_put32(h + 16, f->crc);
	segment_put32(h + 20, f->seg);
	segment_put32(h + 24, f->envlen);
	segment_put32(h + 28, f->envcrc);
	segment_put32(h + 32, 0);
	segment_put32(h + 36, crc32c(0, h, 36));
}

/* segment_header_parse - a header's fields; false unless its magic and
 * checksum verify (pure) */
static bool segment_header_parse(const unsigned char h[SEGMENT_HDR_LEN],
    struct segment_hdr *f)
{
	if (memcmp(h, segment_magic, 4) != 0 ||
	    segment_get32(h + 36) != crc32c(0, h, 36))
		return false;
	f->len = segment_get32(h + 4);
	f->id = segment_get32(h + 8) | (uint64_t)segment_get32(h + 12) << 32;
	f->crc = segment_get32(h + 16);
	f->seg = segment_get32(h + 20);
	f->envlen = segment_get32(h + 24);
	f->envcrc = segment_get32(h + 28);
	return true;
}

int segment_append(struct segment_writer *w, uint64_t id, const void *mem,
    size_t memlen, int fd, uint64_t fdlen, const void *env, size_t envlen,
    uint32_t *seg, uint64_t *off, uint32_t *crc)
{
	unsigned char h[SEGMENT_HDR_LEN];
	struct segment_hdr f;
	uint64_t start, pos, done;
	uint32_t c;
	int e;

	if (memlen + fdlen > 0xffffffffu || envlen > SEGMENT_ENV_MAX) {
		/* never written: segment_scan would refuse it.  What was
		 * gathered goes out now: its memory is the caller's again */
		e = segment_pend_write(w);
		return e != 0 ? e : EFBIG;
	}
	if (w->fd < 0 || w->broken || w->off >= SEGMENT_MAX_BYTES) {
		if ((e = segment_open_next(w)) != 0)
			return e;
	}
	start = w->off;
	pos = start + SEGMENT_HDR_LEN;
	c = crc32c(0, mem, memlen);
	if (fdlen > 0) {	/* a spilled body: mem, then the file's bytes */
		if ((e = segment_pend_write(w)) != 0)
			return e;
		if ((e = segment_pwrite_all(w->fd, mem, memlen, pos)) != 0)
			goto fail;
		pos += memlen;
		memlen = 0;
	}
	for (done = 0; done < fdlen;) {
		char chunk[65536];
		size_t want = fdlen - done < sizeof(chunk) ?
		    (size_t)(fdlen - done) : sizeof(chunk);
		ssize_t r = pread(fd, chunk, want, (off_t)done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			e = r < 0 ? errno : EIO;
			goto fail;
		}
		c = crc32c(c, chunk, (size_t)r);
		if ((e = segment_pwrite_all(w->fd, chunk, (size_t)r, pos)) != 0)
			goto fail;
		pos += (uint64_t)r;
		done += (uint64_t)r;
	}
	f.len = (uint64_t)(pos - start - SEGMENT_HDR_LEN) + memlen;
	f.id = id;
	f.crc = c;
	f.seg = w->id;
	f.envlen = (uint32_t)envlen;
	f.envcrc = crc32c(0, env, envlen);
	segment_header(h, &f);
	if (fdlen > 0) {
		if ((e = segment_pwrite_all(w->fd, env, envlen, pos)) != 0 ||
		    (e = segment_pwrite_all(w->fd, h, sizeof(h), start)) != 0)
			goto fail;
		pos += envlen;
	} else {		/* the usual case: gathered */
		segment_pend_meta(w, h, sizeof(h));
		segment_pend_add(w, mem, 0, memlen);
		segment_pend_meta(w, env, envlen);
		pos += memlen + envlen;
	}
	w->off = pos;
	if (fdlen > 0)
		w->pend_at = pos;
	*seg = w->id;
	*off = start;
	*crc = c;
	return 0;
fail:
	segment_pend_drop(w);
	w->broken = true;
	return e;
}

int segment_sync(struct segment_writer *w, bool may_share, bool *flush)
{
	int e;

	*flush = false;
	if (w->fd < 0 || w->synced >= w->off)
		return 0;
	if ((e = segment_pend_write(w)) != 0)
		return e;
	fault_delay("slow_sync", 2000);
	if (fault_error("sync_error")) {	/* as a failed sync */
		w->broken = true;
		return EIO;
	}
	/*
	 * A failed sync may have dropped dirty pages: the file is never
	 * trusted again (the rows of this batch are not committed, and the
	 * next append starts a new file).
	 */
	if (may_share && w->shared_flush && !w->need_dirsync &&
	    w->off <= w->ready) {
		if (sync_file_range(w->fd, (off_t)w->synced,
		    (off_t)(w->off - w->synced), SYNC_FILE_RANGE_WAIT_BEFORE |
		    SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER) != 0) {
			w->broken = true;
			return errno;
		}
		*flush = true;
	} else {
		if (fdatasync(w->fd) != 0) {
			w->broken = true;
			return errno;
		}
		if (w->need_dirsync && fsync(w->dirfd) != 0) {
			w->broken = true;
			return errno;
		}
		w->need_dirsync = false;
	}
	w->synced = w->off;
	return 0;
}

void segment_next_pos(const struct segment_writer *w, uint32_t *seg,
    uint64_t *off)
{
	if (w->fd >= 0 && w->broken) {		/* the next append: a new file */
		*seg = w->id + 1;
		*off = 0;
	} else {
		*seg = w->id;
		*off = w->fd >= 0 ? w->off : 0;
	}
}

int segment_write_out(struct segment_writer *w)
{
	int e;

	if (w->fd < 0 || w->broken || w->synced >= w->off)
		return 0;
	if ((e = segment_pend_write(w)) != 0)
		return e;
	/* errors of the device show in segment_sync */
	(void)sync_file_range(w->fd, (off_t)w->synced,
	    (off_t)(w->off - w->synced), SYNC_FILE_RANGE_WRITE);
	return 0;
}

void segment_prepare(struct segment_writer *w)
{
	static const char zero[65536];
	uint64_t from, to, pos;

	if (!w->shared_flush || w->fd < 0 || w->broken || w->prep_failed ||
	    w->off >= SEGMENT_MAX_BYTES || w->synced < w->off ||
	    (w->ready > w->off && w->ready - w->off >= SEGMENT_PREP_LOW))
		return;
	from = w->ready > w->off ? w->ready : w->off;
	to = from + SEGMENT_PREP_BYTES;
	for (pos = from; pos < to; pos += sizeof(zero)) {
		if (segment_pwrite_all(w->fd, zero, sizeof(zero), pos) != 0)
			break;
	}
	/* the size and the new blocks, and the name of a new file */
	if (pos < to || fdatasync(w->fd) != 0 ||
	    (w->need_dirsync && fsync(w->dirfd) != 0)) {
		w->prep_failed = true;	/* a full disk: appends go on */
		return;
	}
	w->need_dirsync = false;
	w->ready = to;
}

int segment_retire(struct segment_writer *w, uint32_t id)
{
	struct buf p = BUF_INIT, sp = BUF_INIT;
	int e = 0;

	segment_path(&p, w->dir, id);
	segment_spare_path(&sp, w->dir);
	if (!w->shared_flush || w->ever_broken || access(sp.p, F_OK) == 0 ||
	    rename(p.p, sp.p) != 0) {
		if (unlink(p.p) != 0 && errno != ENOENT)
			e = errno;
	}
	buf_free(&p);
	buf_free(&sp);
	return e;
}

/* the header of records written before the envelope joined the body
 * (24 bytes: magic "ETQ1", u32 body length, u64 id, u32 body CRC, u32
 * CRC of the first 20 bytes); still read, never written */
static const char segment_magic_v1[4] = { 'E', 'T', 'Q', '1' };
#define SEGMENT_HDR_V1_LEN 24

/* segment_header_check - the record header at off of an open segment
 * seg is the one of message id (length, checksums); *hlen is set to its
 * length (where the body starts): 0, EBADMSG or errno */
static int segment_header_check(int fd, uint32_t seg, uint64_t off,
    uint64_t id, uint64_t len, uint32_t crc, uint64_t *hlen)
{
	unsigned char h[SEGMENT_HDR_LEN];
	struct segment_hdr f;
	ssize_t r = pread(fd, h, sizeof(h), (off_t)off);

	if (r < 0)
		return errno;
	if (r >= SEGMENT_HDR_V1_LEN && memcmp(h, segment_magic_v1, 4) == 0) {
		*hlen = SEGMENT_HDR_V1_LEN;
		return segment_get32(h + 20) == crc32c(0, h, 20) &&
		    segment_get32(h + 4) == (uint32_t)len &&
		    (segment_get32(h + 8) |
		    (uint64_t)segment_get32(h + 12) << 32) == id &&
		    segment_get32(h + 16) == crc ? 0 : EBADMSG;
	}
	*hlen = SEGMENT_HDR_LEN;
	if (r != (ssize_t)sizeof(h) || !segment_header_parse(h, &f) ||
	    f.seg != seg || f.len != len || f.id != id || f.crc != crc)
		return EBADMSG;
	return 0;
}

void segment_cursor_init(struct segment_cursor *c, const char *dir)
{
	memset(c, 0, sizeof(*c));
	c->dir = dir;
	c->fd = -1;
}

void segment_cursor_close(struct segment_cursor *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->open = false;
}

int segment_check(struct segment_cursor *c, uint32_t seg, uint64_t off,
    uint64_t id, uint64_t len, uint32_t crc)
{
	uint64_t hlen;
	int e;

	if (!c->open || c->seg != seg) {
		struct buf p = BUF_INIT;
		struct stat st;

		segment_cursor_close(c);
		c->open = true;
		c->seg = seg;
		segment_path(&p, c->dir, seg);
		c->fd = open(p.p, O_RDONLY | O_CLOEXEC);
		c->err = c->fd < 0 ? errno : 0;
		buf_free(&p);
		c->size = c->fd >= 0 && fstat(c->fd, &st) == 0 ?
		    (uint64_t)st.st_size : 0;
	}
	if (c->fd < 0)
		return c->err;
	if ((e = segment_header_check(c->fd, seg, off, id, len, crc,
	    &hlen)) != 0)
		return e;
	if (off + hlen + len > c->size)
		return EBADMSG;		/* cut short */
	return 0;
}

int segment_read(const char *dir, uint32_t seg, uint64_t off, uint64_t id,
    uint64_t len, uint32_t crc, struct buf *out)
{
	struct buf p = BUF_INIT;
	size_t base = out->len;
	uint64_t hlen;
	int fd, e;

	segment_path(&p, dir, seg);
	fd = open(p.p, O_RDONLY | O_CLOEXEC);
	buf_free(&p);
	if (fd < 0)
		return errno;
	if ((e = segment_header_check(fd, seg, off, id, len, crc, &hlen)) != 0)
		goto out;
	buf_reserve(out, (size_t)len);
	if ((e = segment_pread_all(fd, out->p + out->len, (size_t)len,
	    off + hlen)) != 0)
		goto out;
	out->len += (size_t)len;
	out->p[out->len] = '\0';
	if (crc32c(0, out->p + base, (size_t)len) != crc)
		e = EBADMSG;
out:
	if (e != 0) {
		out->len = base;
		if (out->p)
			out->p[base] = '\0';
	}
	close(fd);
	return e;
}

/* segment_ids - the numbers of the segment files in dir from from on,
 * sorted; *n of them (malloc'd, or NULL) */
static int segment_id_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static uint32_t *segment_ids(const char *dir, uint32_t from, size_t *n,
    int *err)
{
	uint32_t *ids = NULL, *t;
	size_t cap = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	*n = 0;
	*err = 0;
	if (d == NULL) {
		*err = errno;
		return NULL;
	}
	while ((de = readdir(d)) != NULL) {
		unsigned long id;
		char *end;

		if (strlen(de->d_name) != 12 ||
		    strcmp(de->d_name + 8, ".seg") != 0)
			continue;
		id = strtoul(de->d_name, &end, 16);
		if (end != de->d_name + 8 || id < from || id > UINT32_MAX)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((t = realloc(ids, cap * sizeof(*ids))) == NULL) {
				*err = ENOMEM;
				break;
			}
			ids = t;
		}
		ids[(*n)++] = (uint32_t)id;
	}
	closedir(d);
	if (*n > 1)
		qsort(ids, *n, sizeof(*ids), segment_id_cmp);
	return ids;
}

/* segment_scan_record - verify the record at r->off of file r->seg (fd,
 * size bytes long) and read its envelope into env: 0, EBADMSG or errno */
static int segment_scan_record(int fd, uint64_t size, struct segment_rec *r,
    struct buf *env)
{
	unsigned char h[SEGMENT_HDR_LEN];
	struct segment_hdr f;
	uint64_t pos, done;
	uint32_t c = 0;
	int e;

	if (size < SEGMENT_HDR_LEN || r->off > size - SEGMENT_HDR_LEN)
		return EBADMSG;
	if ((e = segment_pread_all(fd, h, sizeof(h), r->off)) != 0)
		return e;
	if (!segment_header_parse(h, &f) || f.seg != r->seg ||
	    f.envlen > SEGMENT_ENV_MAX ||
	    f.len + f.envlen > size - r->off - SEGMENT_HDR_LEN)
		return EBADMSG;
	pos = r->off + SEGMENT_HDR_LEN;
	for (done = 0; done < f.len;) {
		char chunk[65536];
		size_t want = f.len - done < sizeof(chunk) ?
		    (size_t)(f.len - done) : sizeof(chunk);

		if ((e = segment_pread_all(fd, chunk, want, pos + done)) != 0)
			return e;
		c = crc32c(c, chunk, want);
		done += want;
	}
	if (c != f.crc)
		return EBADMSG;
	buf_reset(env);
	buf_reserve(env, f.envlen);
	if ((e = segment_pread_all(fd, env->p, f.envlen, pos + f.len)) != 0)
		return e;
	env->len = f.envlen;
	env->p[env->len] = '\0';
	if (crc32c(0, env->p, env->len) != f.envcrc)
		return EBADMSG;
	r->id = f.id;
	r->len = f.len;
	r->crc = f.crc;
	r->env = env->p;
	r->envlen = env->len;
	r->end = pos + f.len + f.envlen;
	return 0;
}

int segment_scan(const char *dir, uint32_t from_seg, uint64_t from_off,
    segment_scan_fn *fn, void *arg)
{
	struct buf env = BUF_INIT, p = BUF_INIT;
	uint32_t *ids;
	size_t n, i;
	int e, rc = 0;

	ids = segment_ids(dir, from_seg, &n, &e);
	if (e != 0) {
		free(ids);
		return e;
	}
	for (i = 0; i < n && rc == 0; i++) {
		struct segment_rec r = { .seg = ids[i] };
		struct stat st;
		int fd;

		r.off = ids[i] == from_seg ? from_off : 0;
		buf_reset(&p);
		segment_path(&p, dir, ids[i]);
		if ((fd = open(p.p, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = errno;
			break;
		}
		if (fstat(fd, &st) != 0)
			rc = errno;
		/* up to the first bytes that are not a record of this file */
		while (rc == 0 && (e = segment_scan_record(fd,
		    (uint64_t)st.st_size, &r, &env)) == 0) {
			rc = fn(arg, &r);
			r.off = r.end;
		}
		if (rc == 0 && e != EBADMSG)
			rc = e;
		close(fd);
	}
	free(ids);
	buf_free(&env);
	buf_free(&p);
	return rc;
}
