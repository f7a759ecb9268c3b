/*
 * SUMMARY
 *	users_int - the layout of the account table, for users*.c only
 * DESCRIPTION
 *	users_parse.c (pure: parser, lookup, lifetime) builds these;
 *	users.c (verification, loading, line making) reads them.  Nothing
 *	outside src/auth includes this header: other modules see opaque
 *	structs and the accessors of users.h.
 * OWNERSHIP
 *	Every pointer is owned by the struct users that holds the account.
 */
#ifndef ETRND_AUTH_USERS_INT_H
#define ETRND_AUTH_USERS_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/users.h"

#define USERS_CRAM_CTX_LEN	32	/* binary {CRAM-MD5} data */

struct users_account {
	char *name;
	char **domains;			/* lower case, sorted, unique */
	size_t ndomains;
	char *plain;			/* {PLAIN} password or NULL */
	size_t plain_len;
	char *hash;			/* crypt(3) hash or NULL */
	int hash_line;			/* its line, for users_load() */
	bool has_cram;
	unsigned char cram[USERS_CRAM_CTX_LEN];	/* {CRAM-MD5}, decoded */
};

struct users {
	int refcnt;
	struct users_account *v;	/* sorted by name (strcmp) */
	size_t n;
};

#endif
