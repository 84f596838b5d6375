/* store: list members. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"
#include "store_int.h"
#include "util.h"

/* Members that count toward max_members; one text for its one slot. */
#define CAPCOUNT_SQL \
	"SELECT count(*) FROM members WHERE list = ? AND status IN ('active', 'pending')"
#define MEMBER_COLS \
	"list, address, name, stakeholder, status, delivery, moderated, joined, term_ends"

void store_member_free(struct store_member *m)
{
	if (!m)
		return;
	free(m->list);
	free(m->address);
	free(m->name);
	free(m->stakeholder);
	free(m->status);
	free(m->delivery);
	memset(m, 0, sizeof *m);
}

void store_members_free(struct store_member *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++)
		store_member_free(&m[i]);
	free(m);
}

static void member_from_row(sqlite3_stmt *s, struct store_member *m)
{
	m->list = store_col_dup(s, 0);
	m->address = store_col_dup(s, 1);
	m->name = store_col_dup(s, 2);
	m->stakeholder = store_col_dup(s, 3);
	m->status = store_col_dup(s, 4);
	m->delivery = store_col_dup(s, 5);
	m->moderated = sqlite3_column_int(s, 6) != 0;
	m->joined = sqlite3_column_int64(s, 7);
	m->term_ends = sqlite3_column_int64(s, 8);
}

int store_members_list(struct store *st, const char *list, struct store_member **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	sqlite3_stmt *s = store_sql(st, SQL_MEM_LIST,
				    "SELECT " MEMBER_COLS " FROM members WHERE list = ?"
				    " ORDER BY address, id");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	struct store_member *v = NULL;
	size_t len = 0, cap = 0;
	int rc;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (len == cap) {
			cap = cap ? cap * 2 : 16;
			v = xrealloc(v, cap * sizeof *v);
		}
		member_from_row(s, &v[len++]);
	}
	int ret = rc == SQLITE_DONE ? STORE_OK : store_fail(st, rc, "list members");
	sqlite3_reset(s);
	if (ret != STORE_OK) {
		store_members_free(v, len);
		return ret;
	}
	*out = v;
	*n = len;
	return STORE_OK;
}

int store_member_get(struct store *st, const char *list, const char *address,
		     struct store_member *out)
{
	memset(out, 0, sizeof *out);
	sqlite3_stmt *s = store_sql(st, SQL_MEM_GET,
				    "SELECT " MEMBER_COLS " FROM members"
				    " WHERE list = ? AND address = ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	store_bind_str(s, 2, address);
	int rc = sqlite3_step(s);
	int ret = STORE_OK;
	if (rc == SQLITE_ROW)
		member_from_row(s, out);
	else if (rc == SQLITE_DONE)
		ret = store_failf(st, STORE_NOTFOUND, "%s is not a member of %s", address, list);
	else
		ret = store_fail(st, rc, "get member");
	sqlite3_reset(s);
	return ret;
}

static int valid_delivery(const char *v)
{
	return strcmp(v, "each") == 0 || strcmp(v, "digest") == 0 || strcmp(v, "none") == 0;
}

/* yes/no/1/0/true/false, any case; -1 for anything else. */
static int parse_bool(const char *v)
{
	static const char *const yes[] = {"yes", "1", "true", "on"};
	static const char *const no[] = {"no", "0", "false", "off"};
	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		if (ascii_strcasecmp(v, yes[i]) == 0)
			return 1;
		if (ascii_strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

static int valid_status(const char *v)
{
	if (!*v || strlen(v) > 32)
		return 0;
	for (const char *p = v; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || *p == '-' || *p == '_'))
			return 0;
	return 1;
}

/* Count one row of a single-integer query into *out. */
static int query_count(struct store *st, sqlite3_stmt *s, long *out, const char *what)
{
	int64_t v;
	int rc = store_query_int(st, s, &v, what);
	*out = (long)v;
	return rc;
}

static int member_insert(struct store *st, const struct store_member *m, long max_members)
{
	sqlite3_stmt *s = store_sql(st, SQL_MEM_EXISTS,
				    "SELECT 1 FROM members WHERE list = ? AND address = ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, m->list);
	store_bind_str(s, 2, m->address);
	int rc = sqlite3_step(s);
	sqlite3_reset(s);
	if (rc == SQLITE_ROW)
		return store_failf(st, STORE_EXISTS, "%s is already a member of %s", m->address,
				   m->list);
	if (rc != SQLITE_DONE)
		return store_fail(st, rc, "find member");

	if (max_members > 0) {
		s = store_sql(st, SQL_MEM_CAPCOUNT, CAPCOUNT_SQL);
		if (!s)
			return STORE_ERR;
		store_bind_str(s, 1, m->list);
		long count = 0;
		int ret = query_count(st, s, &count, "count members");
		if (ret != STORE_OK)
			return ret;
		if (count >= max_members)
			return store_failf(st, STORE_FULL, "%s is full (%ld members)", m->list,
					   max_members);
	}

	s = store_sql(st, SQL_MEM_INSERT,
		      "INSERT INTO members(" MEMBER_COLS ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, m->list);
	store_bind_str(s, 2, m->address);
	store_bind_str(s, 3, m->name);
	store_bind_str(s, 4, m->stakeholder);
	store_bind_str(s, 5, m->status && *m->status ? m->status : "active");
	store_bind_str(s, 6, m->delivery && *m->delivery ? m->delivery : "each");
	sqlite3_bind_int(s, 7, m->moderated ? 1 : 0);
	sqlite3_bind_int64(s, 8, m->joined ? m->joined : now_epoch());
	sqlite3_bind_int64(s, 9, m->term_ends);
	return store_exec(st, s, "add member");
}

int store_member_add(struct store *st, const struct store_member *m, long max_members)
{
	if (!m->list || !*m->list || !m->address || !*m->address)
		return store_failf(st, STORE_INVAL, "a member needs a list and an address");
	if (m->delivery && *m->delivery && !valid_delivery(m->delivery))
		return store_failf(st, STORE_INVAL, "delivery must be each, digest or none");
	if (m->status && *m->status && !valid_status(m->status))
		return store_failf(st, STORE_INVAL, "bad member status");
	int rc = store_tx_begin(st);
	if (rc != STORE_OK)
		return rc;
	rc = member_insert(st, m, max_members);
	if (rc == STORE_OK)
		return store_tx_commit(st);
	store_tx_rollback(st);
	return rc;
}

static int changed_one(struct store *st, sqlite3_stmt *s, const char *list, const char *address,
		       const char *what)
{
	int rc = store_exec(st, s, what);
	if (rc != STORE_OK)
		return rc;
	if (sqlite3_changes(st->db) == 0)
		return store_failf(st, STORE_NOTFOUND, "%s is not a member of %s", address, list);
	return STORE_OK;
}

int store_member_remove(struct store *st, const char *list, const char *address)
{
	sqlite3_stmt *s = store_sql(st, SQL_MEM_DELETE,
				    "DELETE FROM members WHERE list = ? AND address = ?");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	store_bind_str(s, 2, address);
	return changed_one(st, s, list, address, "remove member");
}

enum value_kind { V_TEXT, V_DELIVERY, V_BOOL, V_STATUS, V_TIME };

/* One fixed statement per settable column: no SQL is built from KEY. */
static const struct {
	const char *key;
	enum store_sql slot;
	const char *sql;
	enum value_kind kind;
} member_keys[] = {
	{"name", SQL_MEM_SET_NAME, "UPDATE members SET name = ? WHERE list = ? AND address = ?",
	 V_TEXT},
	{"stakeholder", SQL_MEM_SET_STAKEHOLDER,
	 "UPDATE members SET stakeholder = ? WHERE list = ? AND address = ?", V_TEXT},
	{"delivery", SQL_MEM_SET_DELIVERY,
	 "UPDATE members SET delivery = ? WHERE list = ? AND address = ?", V_DELIVERY},
	{"moderated", SQL_MEM_SET_MODERATED,
	 "UPDATE members SET moderated = ? WHERE list = ? AND address = ?", V_BOOL},
	{"status", SQL_MEM_SET_STATUS,
	 "UPDATE members SET status = ? WHERE list = ? AND address = ?", V_STATUS},
	{"term_ends", SQL_MEM_SET_TERM,
	 "UPDATE members SET term_ends = ? WHERE list = ? AND address = ?", V_TIME},
};

int store_member_set(struct store *st, const char *list, const char *address, const char *key,
		     const char *value)
{
	size_t k;
	for (k = 0; k < sizeof member_keys / sizeof member_keys[0]; k++)
		if (key && strcmp(key, member_keys[k].key) == 0)
			break;
	if (k == sizeof member_keys / sizeof member_keys[0])
		return store_failf(st, STORE_INVAL,
				   "unknown member setting '%s' (name, stakeholder, delivery,"
				   " moderated, status, term_ends)",
				   key ? key : "");
	if (!value)
		value = "";

	int b = 0;
	long long t = 0;
	switch (member_keys[k].kind) {
	case V_TEXT:
		break;
	case V_DELIVERY:
		if (!valid_delivery(value))
			return store_failf(st, STORE_INVAL,
					   "delivery must be each, digest or none");
		break;
	case V_BOOL:
		b = parse_bool(value);
		if (b < 0)
			return store_failf(st, STORE_INVAL, "moderated must be yes or no");
		break;
	case V_STATUS:
		if (!valid_status(value))
			return store_failf(st, STORE_INVAL, "bad member status '%s'", value);
		break;
	case V_TIME: {
		char *end;
		errno = 0;
		t = strtoll(value, &end, 10);
		if (errno || end == value || *end || t < 0)
			return store_failf(st, STORE_INVAL,
					   "term_ends must be seconds since the epoch (0 = none)");
		break;
	}
	}

	sqlite3_stmt *s = store_sql(st, member_keys[k].slot, member_keys[k].sql);
	if (!s)
		return STORE_ERR;
	switch (member_keys[k].kind) {
	case V_BOOL:
		sqlite3_bind_int(s, 1, b);
		break;
	case V_TIME:
		sqlite3_bind_int64(s, 1, t);
		break;
	default:
		store_bind_str(s, 1, value);
	}
	store_bind_str(s, 2, list);
	store_bind_str(s, 3, address);
	return changed_one(st, s, list, address, "update member");
}

int store_member_count(struct store *st, const char *list, long *out)
{
	*out = 0;
	sqlite3_stmt *s = store_sql(st, SQL_MEM_CAPCOUNT, CAPCOUNT_SQL);
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, list);
	return query_count(st, s, out, "count members");
}

int store_member_set_token(struct store *st, const char *list, const char *address,
			   const char *token)
{
	sqlite3_stmt *s = store_sql(st, SQL_MEM_SET_TOKEN,
				    "UPDATE members SET unsub_token = ? WHERE list = ? AND address = ?"
				    " AND unsub_token IS NULL");
	if (!s)
		return STORE_ERR;
	store_bind_str(s, 1, token);
	store_bind_str(s, 2, list);
	store_bind_str(s, 3, address);
	return store_exec(st, s, "set unsubscribe token");
}
