/* smtp_dsn - build a delivery status notification (RFC 3464, RFC 3461) */
#include "smtp/smtp_dsn.h"

#include <string.h>

#include "util/strutil.h"

#define FOLD_SOFT	78	/* preferred line width when folding text */
#define HOST_MAX	255	/* configured or remote host names */

/* crlf - end the current line */
static void crlf(struct buf *out)
{
	buf_append(out, "\r\n", 2);
}

/* clean_len - the length of byte c as put_clean() writes it */
static size_t clean_len(unsigned char c)
{
	return (c >= 0x20 && c < 0x7f) ? 1 : 4;
}

/*
 * put_clean - append s[0..len) with every byte outside printable ASCII as
 * \xHH, at most max bytes (max >= 3), cut between escapes with "...".
 * The backslash itself is kept: addresses may hold quoted-pairs, and the
 * diagnostic text arrives already escaped by smtp_reply_format_log(),
 * which this leaves as it is.
 */
static void put_clean(struct buf *out, const char *s, size_t len, size_t max)
{
	size_t i, total = 0, used = 0, stop;

	for (i = 0; i < len && total <= max; i++)
		total += clean_len((unsigned char)s[i]);
	stop = len;
	if (total > max) {
		for (i = 0; i < len; i++) {
			size_t n = clean_len((unsigned char)s[i]);

			if (used + n > max - 3)
				break;
			used += n;
		}
		stop = i;
	}
	for (i = 0; i < stop; i++) {
		if (clean_len((unsigned char)s[i]) == 1)
			buf_putc(out, s[i]);
		else
			str_escape(out, s + i, 1);
	}
	if (stop < len)
		buf_puts(out, "...");
}

/* put_value - put_clean() for a C string, NULL being empty */
static void put_value(struct buf *out, const char *s, size_t max)
{
	if (s != NULL)
		put_clean(out, s, strlen(s), max);
}

/*
 * put_folded - append the clean text s[0..len) (printable ASCII only) to a
 * line that is already col bytes long: words are separated by one space,
 * a word that would pass FOLD_SOFT goes on a new line that starts with
 * indent, and a word longer than the room up to SMTP_DSN_FOLD_HARD is
 * broken there.  Runs of spaces collapse (the text is a human-readable
 * diagnostic, never an address).  With lead, a separator precedes the
 * first word as well.  The current line is left open.
 */
static void put_folded(struct buf *out, size_t col, const char *s, size_t len,
    const char *indent, bool lead)
{
	size_t ilen = strlen(indent), i = 0;
	bool first = true;

	for (;;) {
		size_t j, wlen;

		while (i < len && s[i] == ' ')
			i++;
		if (i >= len)
			break;
		for (j = i; j < len && s[j] != ' '; j++)
			;
		wlen = j - i;
		if (!first || lead) {
			if (col + 1 + wlen <= FOLD_SOFT) {
				buf_putc(out, ' ');
				col++;
			} else {
				crlf(out);
				buf_puts(out, indent);
				col = ilen;
			}
		}
		while (wlen > 0) {
			size_t n;

			if (col >= SMTP_DSN_FOLD_HARD) {
				crlf(out);
				buf_puts(out, indent);
				col = ilen;
			}
			n = SMTP_DSN_FOLD_HARD - col;
			if (n > wlen)
				n = wlen;
			buf_append(out, s + i, n);
			col += n;
			i += n;
			wlen -= n;
		}
		first = false;
	}
}

/* valid_status - "class.subject.detail", class 2, 4 or 5 (RFC 3463) */
static bool valid_status(const char *s)
{
	size_t i, part, n;

	if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') ||
	    s[1] != '.')
		return false;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (n = 0; s[i] >= '0' && s[i] <= '9'; n++, i++)
			;
		if (n < 1 || n > 3)
			return false;
		if (part == 0 && s[i++] != '.')
			return false;
	}
	return s[i] == '\0';
}

/* action_name - the Action field value; anything unknown counts as failed */
static const char *action_name(enum smtp_dsn_action a)
{
	switch (a) {
	case SMTP_DSN_DELAYED:
		return "delayed";
	case SMTP_DSN_DELIVERED:
		return "delivered";
	case SMTP_DSN_RELAYED:
		return "relayed";
	case SMTP_DSN_FAILED:
	default:
		return "failed";
	}
}

/* action_text - the same for a person */
static const char *action_text(enum smtp_dsn_action a)
{
	switch (a) {
	case SMTP_DSN_DELAYED:
		return "not delivered yet, still trying";
	case SMTP_DSN_DELIVERED:
		return "delivered";
	case SMTP_DSN_RELAYED:
		return "relayed to a system that sends no delivery reports";
	case SMTP_DSN_FAILED:
	default:
		return "delivery failed";
	}
}

/* status_of - the recipient's status, or x.0.0 by action when missing */
static const char *status_of(const struct smtp_dsn_rcpt *rc)
{
	if (valid_status(rc->status))
		return rc->status;
	switch (rc->action) {
	case SMTP_DSN_DELAYED:
		return "4.0.0";
	case SMTP_DSN_DELIVERED:
	case SMTP_DSN_RELAYED:
		return "2.0.0";
	case SMTP_DSN_FAILED:
	default:
		return "5.0.0";
	}
}

/* smtp_dsn_date - RFC 5322 date-time in UTC, locale-independent */
void smtp_dsn_date(struct buf *out, time_t t)
{
	static const char *const days[] = {
		"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"
	};
	static const char *const months[] = {
		"Jan", "Feb", "Mar", "Apr", "May", "Jun",
		"Jul", "Aug", "Sep", "Oct", "Nov", "Dec"
	};
	struct tm tm;

	/* RFC 5322 3.3 wants a four-digit year; show the epoch otherwise */
	if (gmtime_r(&t, &tm) == NULL || tm.tm_year < 0 ||
	    tm.tm_year > 9999 - 1900 || tm.tm_wday < 0 || tm.tm_wday > 6 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11) {
		t = 0;
		gmtime_r(&t, &tm);
	}
	buf_printf(out, "%s, %02d %s %04d %02d:%02d:%02d +0000",
	    days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
	    tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* boundary_ok - 1..70 of bcharsnospace (RFC 2046 5.1.1) */
static bool boundary_ok(const char *b)
{
	size_t i;

	if (b == NULL)
		return false;
	for (i = 0; b[i] != '\0'; i++) {
		char c = b[i];

		if (i >= SMTP_DSN_BOUNDARY_MAX)
			return false;
		if (!ascii_isalnum(c) && strchr("'()+_,-./:=?", c) == NULL)
			return false;
	}
	return i > 0;
}

/* is_delim - the line p[0..n) would be taken for our boundary delimiter */
static bool is_delim(const char *p, size_t n, const char *b, size_t blen)
{
	return n >= blen + 2 && p[0] == '-' && p[1] == '-' &&
	    memcmp(p + 2, b, blen) == 0;
}

/*
 * part_ok - p[0..n) can go into the DSN byte-exact: only CRLF line ends,
 * no NUL, no line over SMTP_DSN_LINE_MAX, no line that starts our
 * boundary.  Sets *eight when a byte is over 0x7f.  The last line may lack
 * its CRLF: the delimiter that follows supplies one.
 */
static bool part_ok(const char *p, size_t n, const char *b, bool *eight)
{
	size_t blen = strlen(b), ls = 0, i;

	*eight = false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '\0' || c == '\n')
			return false;
		if (c >= 0x80)
			*eight = true;
		if (c != '\r')
			continue;
		if (i + 1 >= n || p[i + 1] != '\n')
			return false;
		if (i - ls > SMTP_DSN_LINE_MAX || is_delim(p + ls, i - ls, b, blen))
			return false;
		i++;
		ls = i + 1;
	}
	return n - ls <= SMTP_DSN_LINE_MAX && !is_delim(p + ls, n - ls, b, blen);
}

/*
 * header_len - the length of the header section of p[0..n), with the
 * CRLF of its last field, when it is at most max; 0 when there is none
 * or it is longer.  A message without an empty line is all header.  Only
 * the first max + 2 bytes are looked at.
 */
static size_t header_len(const char *p, size_t n, size_t max)
{
	size_t lim = n < max + 2 ? n : max + 2, i;

	if (n >= 2 && p[0] == '\r' && p[1] == '\n')
		return 0;
	for (i = 0; i + 4 <= lim; i++) {
		if (p[i] == '\r' && memcmp(p + i, "\r\n\r\n", 4) == 0)
			return i + 2;
	}
	return n <= max ? n : 0;
}

/* choose_part - what to return of the original, and whether it is 8-bit */
static enum smtp_dsn_returned choose_part(const struct smtp_dsn *d,
    size_t *len, bool *eight)
{
	size_t max = d->full_max ? d->full_max : SMTP_DSN_FULL_MAX;
	size_t h;

	*len = 0;
	*eight = false;
	if (d->body == NULL || d->body_len == 0)
		return SMTP_DSN_RETURNED_NONE;
	if (d->kind == SMTP_DSN_FAILURE && d->ret != SMTP_RET_HDRS &&
	    d->body_len <= max && part_ok(d->body, d->body_len, d->boundary,
	    eight)) {
		*len = d->body_len;
		return SMTP_DSN_RETURNED_FULL;
	}
	h = header_len(d->body, d->body_len, max);
	if (h > 0 && part_ok(d->body, h, d->boundary, eight)) {
		*len = h;
		return SMTP_DSN_RETURNED_HEADERS;
	}
	*eight = false;
	return SMTP_DSN_RETURNED_NONE;
}

/* put_msgid_part - s with anything but letters and digits as "_" */
static void put_msgid_part(struct buf *out, const char *s, size_t max)
{
	size_t i;

	if (s == NULL || *s == '\0') {
		buf_putc(out, '0');
		return;
	}
	for (i = 0; s[i] != '\0' && i < max; i++)
		buf_putc(out, ascii_isalnum(s[i]) ? s[i] : '_');
}

/* put_host - a host name in a Message-ID or address: LDH, dots, literals */
static void put_host(struct buf *out, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i < HOST_MAX; i++) {
		char c = s[i];

		buf_putc(out, ascii_isalnum(c) || strchr("-.[]:", c) ? c : '_');
	}
}

/* put_headers - the DSN's own header section */
static void put_headers(const struct smtp_dsn *d, struct buf *out,
    bool eight)
{
	static const char *const subjects[] = {
		"Undelivered Mail Returned to Sender",
		"Delayed Mail (still being retried)",
		"Successful Mail Delivery Report",
	};
	static const char *const idkind[] = { "bounce", "delay", "success" };
	unsigned k = (unsigned)d->kind <= SMTP_DSN_SUCCESS ? (unsigned)d->kind : 0;

	buf_puts(out, "From: \"Mail Delivery System\" <MAILER-DAEMON@");
	put_host(out, d->reporting_mta);
	buf_puts(out, ">\r\nTo: <");
	put_value(out, d->sender, SMTP_DSN_VALUE_MAX);
	buf_puts(out, ">\r\nSubject: ");
	buf_puts(out, subjects[k]);
	buf_puts(out, "\r\nDate: ");
	smtp_dsn_date(out, d->now);
	buf_puts(out, "\r\nMessage-ID: <");
	put_msgid_part(out, d->qid, 64);
	buf_printf(out, ".%s.%lld@", idkind[k], (long long)d->now);
	put_host(out, d->reporting_mta);
	buf_puts(out, ">\r\nAuto-Submitted: auto-replied\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: multipart/report; report-type=delivery-status;\r\n"
	    "\tboundary=\"");
	buf_puts(out, d->boundary);
	buf_puts(out, "\"\r\n");
	buf_puts(out, eight ? "Content-Transfer-Encoding: 8bit\r\n" :
	    "Content-Transfer-Encoding: 7bit\r\n");
	crlf(out);
	buf_puts(out, "This is a MIME-encapsulated delivery status notification.\r\n");
}

/* put_intro - the first paragraph of part 1, by kind */
static void put_intro(const struct smtp_dsn *d, struct buf *out)
{
	buf_puts(out, "This is the mail delivery system at ");
	put_value(out, d->reporting_mta, HOST_MAX);
	buf_puts(out, ".\r\n\r\n");
	switch (d->kind) {
	case SMTP_DSN_DELAY:
		buf_puts(out,
		    "Your message has not been delivered yet to the recipients\r\n"
		    "listed below.  The mail system is still trying; you do not\r\n"
		    "need to send it again.  You will be told if it finally fails.\r\n");
		break;
	case SMTP_DSN_SUCCESS:
		buf_puts(out,
		    "This is the delivery report you asked for when you sent your\r\n"
		    "message, for the recipients listed below.\r\n");
		break;
	case SMTP_DSN_FAILURE:
	default:
		buf_puts(out,
		    "Your message could not be delivered to the recipients listed\r\n"
		    "below.  The mail system has given up on them.\r\n");
		break;
	}
}

/* put_human - part 1, text/plain */
static void put_human(const struct smtp_dsn *d, struct buf *out,
    enum smtp_dsn_returned ret)
{
	struct buf tmp = BUF_INIT;
	size_t i;

	buf_printf(out, "--%s\r\n", d->boundary);
	buf_puts(out, "Content-Type: text/plain; charset=us-ascii\r\n"
	    "Content-Description: Notification\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n\r\n");
	put_intro(d, out);
	buf_puts(out, "\r\nQueue ID: ");
	put_value(out, d->qid, 64);
	crlf(out);
	if (d->arrival != 0) {
		buf_puts(out, "Arrived: ");
		smtp_dsn_date(out, d->arrival);
		crlf(out);
	}
	for (i = 0; i < d->nrcpt; i++) {
		const struct smtp_dsn_rcpt *rc = &d->rcpts[i];

		buf_puts(out, "\r\n  <");
		put_value(out, rc->addr, SMTP_DSN_VALUE_MAX);
		buf_printf(out, ">: %s (%s)\r\n", action_text(rc->action),
		    status_of(rc));
		if (rc->remote_mta != NULL && *rc->remote_mta != '\0') {
			buf_puts(out, "    Remote host: ");
			put_value(out, rc->remote_mta, HOST_MAX);
			crlf(out);
		}
		if (rc->diagnostic != NULL && *rc->diagnostic != '\0') {
			buf_reset(&tmp);
			put_value(&tmp, rc->diagnostic, SMTP_DSN_DIAG_MAX);
			buf_puts(out, "    Reply:");
			put_folded(out, 10, tmp.p ? tmp.p : "", tmp.len, "      ",
			    true);
			crlf(out);
		}
		if (rc->action == SMTP_DSN_DELAYED && rc->retry_until != 0) {
			buf_puts(out, "    Trying until: ");
			smtp_dsn_date(out, rc->retry_until);
			crlf(out);
		}
	}
	crlf(out);
	switch (ret) {
	case SMTP_DSN_RETURNED_FULL:
		buf_puts(out, "The message is attached.\r\n");
		break;
	case SMTP_DSN_RETURNED_HEADERS:
		buf_puts(out, "The header section of the message is attached.\r\n");
		break;
	case SMTP_DSN_RETURNED_NONE:
		buf_puts(out, "The message is not attached.\r\n");
		break;
	}
	buf_free(&tmp);
}

/* put_orcpt - "type;addr" as given; a bare address is taken as rfc822 */
static void put_orcpt(struct buf *out, const char *orcpt)
{
	if (strchr(orcpt, ';') == NULL)
		buf_puts(out, "rfc822;");
	put_value(out, orcpt, SMTP_DSN_VALUE_MAX);
}

/* put_status - part 2, message/delivery-status (RFC 3464 2.2, 2.3) */
static void put_status(const struct smtp_dsn *d, struct buf *out)
{
	struct buf tmp = BUF_INIT;
	size_t i;

	buf_printf(out, "\r\n--%s\r\n", d->boundary);
	buf_puts(out, "Content-Type: message/delivery-status\r\n"
	    "Content-Description: Delivery report\r\n"
	    "Content-Transfer-Encoding: 7bit\r\n\r\n");
	buf_puts(out, "Reporting-MTA: dns; ");
	put_value(out, d->reporting_mta, HOST_MAX);
	crlf(out);
	if (d->envid != NULL) {
		buf_puts(out, "Original-Envelope-Id: ");
		put_value(out, d->envid, SMTP_DSN_VALUE_MAX);
		crlf(out);
	}
	if (d->qid != NULL) {
		buf_puts(out, "X-Etrnd-Queue-Id: ");
		put_value(out, d->qid, 64);
		crlf(out);
	}
	if (d->arrival != 0) {
		buf_puts(out, "Arrival-Date: ");
		smtp_dsn_date(out, d->arrival);
		crlf(out);
	}
	for (i = 0; i < d->nrcpt; i++) {
		const struct smtp_dsn_rcpt *rc = &d->rcpts[i];

		crlf(out);
		if (rc->orcpt != NULL) {
			buf_puts(out, "Original-Recipient: ");
			put_orcpt(out, rc->orcpt);
			crlf(out);
		}
		buf_puts(out, "Final-Recipient: rfc822;");
		put_value(out, rc->addr, SMTP_DSN_VALUE_MAX);
		buf_printf(out, "\r\nAction: %s\r\nStatus: %s\r\n",
		    action_name(rc->action), status_of(rc));
		if (rc->remote_mta != NULL && *rc->remote_mta != '\0') {
			buf_puts(out, "Remote-MTA: dns; ");
			put_value(out, rc->remote_mta, HOST_MAX);
			crlf(out);
		}
		if (rc->diagnostic != NULL && *rc->diagnostic != '\0') {
			buf_reset(&tmp);
			put_value(&tmp, rc->diagnostic, SMTP_DSN_DIAG_MAX);
			buf_puts(out, "Diagnostic-Code: smtp;");
			put_folded(out, 22, tmp.p ? tmp.p : "", tmp.len, " ",
			    true);
			crlf(out);
		}
		if (rc->last_attempt != 0) {
			buf_puts(out, "Last-Attempt-Date: ");
			smtp_dsn_date(out, rc->last_attempt);
			crlf(out);
		}
		if (rc->action == SMTP_DSN_DELAYED && rc->retry_until != 0) {
			buf_puts(out, "Will-Retry-Until: ");
			smtp_dsn_date(out, rc->retry_until);
			crlf(out);
		}
	}
	buf_free(&tmp);
}

/* put_original - part 3, byte-exact, then the closing delimiter */
static void put_original(const struct smtp_dsn *d, struct buf *out,
    enum smtp_dsn_returned ret, size_t len, bool eight)
{
	if (ret != SMTP_DSN_RETURNED_NONE) {
		buf_printf(out, "\r\n--%s\r\n", d->boundary);
		if (ret == SMTP_DSN_RETURNED_FULL)
			buf_puts(out, "Content-Type: message/rfc822\r\n"
			    "Content-Description: Undelivered message\r\n");
		else
			buf_puts(out, "Content-Type: text/rfc822-headers\r\n"
			    "Content-Description: Message headers\r\n");
		buf_puts(out, eight ? "Content-Transfer-Encoding: 8bit\r\n" :
		    "Content-Transfer-Encoding: 7bit\r\n");
		crlf(out);
		/*
		 * The CRLF before the delimiter belongs to the delimiter
		 * (RFC 2046 5.1.1), so the part holds exactly these bytes,
		 * whether or not they end in CRLF.
		 */
		buf_append(out, d->body, len);
	}
	buf_printf(out, "\r\n--%s--\r\n", d->boundary);
}

/* smtp_dsn_build - check the inputs, then write the whole message */
bool smtp_dsn_build(const struct smtp_dsn *d, struct buf *out,
    struct smtp_dsn_info *info)
{
	struct smtp_dsn_info dummy;
	enum smtp_dsn_returned ret;
	size_t len;
	bool eight;

	if (info == NULL)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	if (d->sender == NULL || *d->sender == '\0') {
		info->error = "no DSN for the null sender";
		return false;
	}
	if (d->reporting_mta == NULL || *d->reporting_mta == '\0') {
		info->error = "no reporting MTA name";
		return false;
	}
	if (d->rcpts == NULL || d->nrcpt == 0) {
		info->error = "no recipient to report";
		return false;
	}
	if (!boundary_ok(d->boundary)) {
		info->error = "bad MIME boundary";
		return false;
	}

	ret = choose_part(d, &len, &eight);
	info->returned = ret;
	info->eightbit = eight;
	put_headers(d, out, eight);
	crlf(out);
	put_human(d, out, ret);
	put_status(d, out);
	put_original(d, out, ret, len, eight);
	return true;
}

/* smtp_dsn_wanted - RFC 3461 4.1 for failures and delay warnings */
bool smtp_dsn_wanted(unsigned notify, bool failure)
{
	if (notify == 0)
		return true;
	if (notify & SMTP_NOTIFY_NEVER)
		return false;
	return (notify & (failure ? SMTP_NOTIFY_FAILURE : SMTP_NOTIFY_DELAY)) != 0;
}

/* smtp_dsn_success_wanted - only when SUCCESS was asked for */
bool smtp_dsn_success_wanted(unsigned notify)
{
	return (notify & SMTP_NOTIFY_NEVER) == 0 &&
	    (notify & SMTP_NOTIFY_SUCCESS) != 0;
}
