/*
 * config - config_load(): the I/O around the pure parser
 *
 * Reads the file (and its domains_file) into memory, feeds the parser and
 * supplies the system's host name as hostname's default.  I/O failures
 * become errors with line 0, "path: cannot open: reason".
 */
#include "config/config.h"
#include "util/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_FILE_MAX	(16 * 1024 * 1024)

/* read_file - the whole of path into out; false with why set */
static bool read_file(const char *path, struct buf *out, const char **why)
{
	int fd, e;
	ssize_t n;

	do
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	while (fd < 0 && errno == EINTR);
	if (fd < 0) {
		*why = "cannot open";
		return false;
	}
	for (;;) {
		/* Read one byte past the cap to tell "exactly 16 MiB" from
		 * "larger"; a FIFO or /dev/zero ends here too. */
		buf_reserve(out, 65536);
		n = read(fd, out->p + out->len, 65536);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			e = errno;
			close(fd);
			errno = e;
			*why = "cannot read";
			return false;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
		out->p[out->len] = '\0';
		if (out->len > CONFIG_FILE_MAX) {
			close(fd);
			errno = EFBIG;
			*why = "larger than 16 MiB";
			return false;
		}
	}
	close(fd);
	return true;
}

/* config_load_recipients - each domain's recipients file, into its table */
static struct config *config_load_recipients(struct config *c,
    struct config_errors *errs)
{
	struct buf text = BUF_INIT;
	const char *why;
	bool ok = true;
	size_t i;

	for (i = 0; c != NULL && i < c->ndomains; i++) {
		struct config_domain *d = &c->domains[i];

		if (d->recipients == NULL)
			continue;
		buf_reset(&text);
		if (!read_file(d->recipients, &text, &why)) {
			if (errs) {
				buf_reset(&text);
				buf_printf(&text, "%s: recipients of %s: %s",
				    d->recipients, d->name, errno == EFBIG ? why :
				    strerror(errno));
				errs->v = xrealloc(errs->v, (errs->n + 1) *
				    sizeof(*errs->v));
				errs->v[errs->n].line = 0;
				errs->v[errs->n++].msg = buf_steal(&text);
			}
			ok = false;
			continue;
		}
		if (!config_rcpt_parse(d, text.p ? text.p : "", text.len,
		    d->recipients, errs))
			ok = false;
	}
	buf_free(&text);
	if (!ok) {
		config_unref(c);
		return NULL;
	}
	return c;
}

/* config_load - read path and its domains_file, then parse */
struct config *config_load(const char *path, struct config_errors *errs)
{
	struct config_parser *p = config_parser_new(errs);
	struct buf text = BUF_INIT;
	char host[HOST_NAME_MAX + 1];
	const char *why;

	if (!read_file(path, &text, &why)) {
		if (errno == EFBIG)
			config_parser_error(p, "%s: %s", path, why);
		else
			config_parser_error(p, "%s: %s: %s", path, why,
			    strerror(errno));
		buf_free(&text);
		return config_parser_finish(p, NULL);
	}
	config_parser_feed(p, text.p, text.len, path, false);
	buf_reset(&text);
	if (config_parser_domains_file(p)) {
		const char *df = config_parser_domains_file(p);

		if (read_file(df, &text, &why))
			config_parser_feed(p, text.p, text.len, df, true);
		else if (errno == EFBIG)
			config_parser_error(p, "%s: domains_file %s: %s", path,
			    df, why);
		else
			config_parser_error(p, "%s: domains_file %s: %s: %s",
			    path, df, why, strerror(errno));
	}
	buf_free(&text);
	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	return config_load_recipients(config_parser_finish(p, host), errs);
}
