/*
 * SUMMARY
 *	users - the ODMR accounts of users_file: parse, look up, verify
 * DESCRIPTION
 *	One account per line (DESIGN.md 7):
 *
 *	    name:{SCHEME}data:domain,domain,...
 *
 *	'#' comment lines and blank lines are ignored; a CR before the LF
 *	and blanks at either end of a line or around a domain are allowed.
 *	  - name: 1..64 of A-Z a-z 0-9 . _ @ + -, compared case-sensitively;
 *	  - SCHEME (case-insensitive) and data:
 *	      PLAIN         the password itself (for tests), 1..256 bytes,
 *	                    no control characters; it may hold ':' (the
 *	                    domains are what follows the LAST ':');
 *	      CRAM-MD5      64 hex digits: HMAC-MD5 contexts in Dovecot's
 *	                    layout, the MD5 chaining words A B C D after the
 *	                    block key^opad, then A B C D after key^ipad,
 *	                    each word little-endian (see users.c);
 *	      SHA512-CRYPT  a "$6$" crypt(3) hash;
 *	      BLF-CRYPT     a "$2b$" (or "$2a$", "$2y$") bcrypt hash;
 *	      CRYPT         any crypt(3) hash libcrypt knows ("$y$"
 *	                    yescrypt, "$6$", "$2b$", ...);
 *	  - domains: 1..100 LDH names (smtp_domain_check(), the rule ATRN
 *	    arguments follow), stored in lower case; a name listed twice on
 *	    one line is an error.
 *	One name may have several lines when each adds mechanisms the others
 *	lack: {CRAM-MD5} serves CRAM-MD5, a crypt hash serves PLAIN and
 *	LOGIN, {PLAIN} serves all three.  So {CRAM-MD5} plus {SHA512-CRYPT}
 *	is fine; two lines serving the same mechanism are an error, and so
 *	are lines whose domain lists are not the same set.
 *
 *	users_parse() is pure (no I/O, no crypto, no logging) and reports
 *	every error, one per line of errs, "NAME:LINE: message" (or "line
 *	LINE: message" when name is NULL), in line order, up to 100.  Any
 *	error refuses the whole text.  Messages never quote secrets.
 *	users_load() reads a file and refuses one that is not a regular
 *	file or that group or others may read or write (mode & 077).
 *
 *	Verification (users.c, libcrypto + libcrypt) compares in constant
 *	time, and an unknown user (a NULL account) takes the dummy path of
 *	the same cost, so the outcome and its timing do not tell whether a
 *	name exists (SECURITY.md E12).  The dummy crypt costs what a
 *	{SHA512-CRYPT} line of users_make_line() costs (5000 rounds); other
 *	schemes or costs, and {PLAIN} (no hashing at all), are told apart by
 *	timing.
 * OWNERSHIP
 *	A struct users is immutable once parsed and reference-counted: the
 *	parser hands out one reference, users_ref() adds one (atomically: it
 *	may be shared between threads), users_free() drops one and frees at
 *	zero, wiping the secrets.  Accounts and their strings are borrowed
 *	from the table and live as long as it does.
 */
#ifndef ETRND_AUTH_USERS_H
#define ETRND_AUTH_USERS_H

#include <stdbool.h>
#include <stddef.h>

#include "util/buf.h"

#define USERS_NAME_MAX		64
#define USERS_DOMAINS_MAX	100
#define USERS_PASSWORD_MAX	256	/* {PLAIN} and users_make_line() */
#define USERS_HASH_MAX		255	/* a crypt(3) hash */
#define USERS_LINE_MAX		8192
#define USERS_FILE_MAX		(16u << 20)
#define USERS_ERRORS_MAX	100
#define USERS_CRAM_HEX_LEN	64	/* {CRAM-MD5} data */
#define USERS_DIGEST_HEX_LEN	32	/* a CRAM-MD5 response digest */

struct users;
struct users_account;

/*
 * users_parse - text[0..len) to a table, or NULL with every error appended
 * to errs (which may be NULL).  name labels the messages.  An empty text
 * (or one of comments only) is a valid, empty table.
 */
struct users *users_parse(const char *text, size_t len, const char *name,
    struct buf *errs);

/*
 * users_load - read and parse path; NULL with the reasons in errs when it
 * cannot be opened or read, is not a regular file, has any of the mode
 * bits 077 set, is larger than USERS_FILE_MAX, or does not parse.  The
 * bytes read are wiped after parsing.
 */
struct users *users_load(const char *path, struct buf *errs);

/* users_ref - one more reference */
struct users *users_ref(struct users *u);
/* users_free - drop a reference (NULL is allowed); the last one frees */
void users_free(struct users *u);

/* users_count - the number of accounts (names) */
size_t users_count(const struct users *u);

/* users_at - the i-th account in name order, NULL past the end */
const struct users_account *users_at(const struct users *u, size_t i);

/* users_find - the account of name (u may be NULL), or NULL */
const struct users_account *users_find(const struct users *u,
    const char *name);
/*
 * users_find_n - the same for name[0..len), which need not be
 * NUL-terminated: NULL for an empty, over-long or NUL-holding name, so a
 * client cannot truncate a name with an embedded NUL.
 */
const struct users_account *users_find_n(const struct users *u,
    const char *name, size_t len);

/* users_account_name - the account's name */
const char *users_account_name(const struct users_account *a);
/* users_account_ndomains, users_account_domain - the domains, sorted */
size_t users_account_ndomains(const struct users_account *a);
const char *users_account_domain(const struct users_account *a, size_t i);
/* users_account_can_password - PLAIN and LOGIN can succeed */
bool users_account_can_password(const struct users_account *a);
/* users_account_can_cram - CRAM-MD5 can succeed */
bool users_account_can_cram(const struct users_account *a);

/*
 * users_may_collect - domain is one of the account's domains: an exact
 * match, ignoring case (a listed example.org does not give
 * sub.example.org).  False for a NULL account.
 */
bool users_may_collect(const struct users_account *a, const char *domain);

/*
 * users_check_password - pw[0..len) is the account's password, for PLAIN
 * and LOGIN: against {PLAIN} (both sides copied into equal fixed-size
 * buffers and compared with CRYPTO_memcmp) or the crypt hash (crypt_rn(),
 * the result compared with CRYPTO_memcmp).  A NULL account, a
 * CRAM-MD5-only account, a password holding a NUL or longer than crypt
 * accepts all go through users_check_password_dummy() and fail.
 */
bool users_check_password(const struct users_account *a, const char *pw,
    size_t len);
/*
 * users_check_password_dummy - spend what a SHA512-CRYPT check spends (a
 * crypt of pw with a fixed setting) and return false
 */
bool users_check_password_dummy(const char *pw, size_t len);

/*
 * users_check_cram - hexdigest[0..hlen) is HMAC-MD5(secret, challenge) in
 * hex (either case), from the {CRAM-MD5} contexts or the {PLAIN}
 * password; the 32 digits are compared in constant time.  A NULL or
 * crypt-only account goes through users_check_cram_dummy() and fails.
 */
bool users_check_cram(const struct users_account *a, const char *challenge,
    size_t clen, const char *hexdigest, size_t hlen);
/* users_check_cram_dummy - the same work with a fixed key; false */
bool users_check_cram_dummy(const char *challenge, size_t clen,
    const char *hexdigest, size_t hlen);

/*
 * users_make_line - append a users_file line (no newline) for name with
 * password and the comma-separated domains: "{CRAM-MD5}" contexts when
 * cram, else "{SHA512-CRYPT}" with a random 16-byte salt (RAND_bytes,
 * crypt_gensalt_rn, default 5000 rounds).  Domains are written in lower
 * case without blanks.  The line is checked with users_parse() before
 * it is appended; false, with nothing appended, when it would not parse
 * (bad name, domains, or a password that is empty, longer than
 * USERS_PASSWORD_MAX or holds a control character) or when the random
 * source or crypt fails.  A user who needs CRAM-MD5 and PLAIN gets two
 * lines, one of each kind.
 */
bool users_make_line(struct buf *out, const char *name, const char *password,
    const char *domains, bool cram);

#endif
