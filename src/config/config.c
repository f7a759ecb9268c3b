/*
 * config - config_load(): the I/O around the pure parser
 *
 * Reads the file (and its domains_file) into memory, feeds the parser and
 * supplies the system's host name as hostname's default.  I/O failures
 * become errors with line 0, "path: cannot open: reason".
 */
#include "config/config.h"

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
	return config_parser_finish(p, host);
}
