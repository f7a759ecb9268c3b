#include "util/fault.h"

#include <signal.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fault_name[64];
static const char *fault_armed;		/* fault_name when armed, else NULL */
static unsigned long fault_at = 1;
static atomic_ulong fault_seen;

void fault_init(void)
{
	const char *v = getenv("ETRND_FAULT");
	const char *colon;
	size_t len;

	fault_armed = NULL;
	atomic_store(&fault_seen, 0);
	if (v == NULL || *v == '\0')
		return;
	colon = strchr(v, ':');
	len = colon ? (size_t)(colon - v) : strlen(v);
	if (len == 0 || len >= sizeof(fault_name))
		return;
	memcpy(fault_name, v, len);
	fault_name[len] = '\0';
	fault_at = 1;
	if (colon) {
		char *end;
		unsigned long n = strtoul(colon + 1, &end, 10);

		if (*end != '\0' || n == 0)
			return;
		fault_at = n;
	}
	fault_armed = fault_name;
}

/* fault_due - this passage of name is the armed one */
static bool fault_due(const char *name)
{
	if (fault_armed == NULL || strcmp(name, fault_armed) != 0)
		return false;
	return atomic_fetch_add(&fault_seen, 1) + 1 == fault_at;
}

bool fault_error(const char *name)
{
	if (!fault_due(name))
		return false;
	dprintf(2, "event=fault_point name=%s action=error\n", name);
	return true;
}

void fault_delay(const char *name, unsigned ms)
{
	if (!fault_due(name))
		return;
	dprintf(2, "event=fault_point name=%s action=delay ms=%u\n", name, ms);
	usleep(ms * 1000u);
}

void fault_point_after(const char *name, unsigned ms)
{
	if (!fault_due(name))
		return;
	/* the other threads go on meanwhile (the loop sends its replies) */
	usleep(ms * 1000u);
	dprintf(2, "event=fault_point name=%s action=SIGKILL\n", name);
	kill(getpid(), SIGKILL);
}

void fault_point(const char *name)
{
	if (!fault_due(name))
		return;
	/* stderr is the log: say so, then die at once */
	dprintf(2, "event=fault_point name=%s action=SIGKILL\n", name);
	kill(getpid(), SIGKILL);
}
