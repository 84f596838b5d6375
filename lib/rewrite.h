/* rewrite: what a post looks like when it leaves the list (RFC 2369, 2919,
 * 8058 headers; the subject prefix exactly once; headers that must not leak
 * dropped), the facts policy.c needs read from its header, and the notice a
 * rejected sender gets. Works on raw bytes and never fails on bad input. */
#ifndef DIALOGUE_REWRITE_H
#define DIALOGUE_REWRITE_H

#include <stddef.h>

#include "config.h"
#include "policy.h"

/* Header facts of RAW for list L: from_addr (caller frees *from_addr, ""
 * when none), has_own_list_id, has_own_x_loop, auto_submitted, and for the
 * content holds n_recipients (addresses in every To and Cc),
 * implicit_destination (neither L@D nor an L-*@D in To or Cc) and
 * from_is_list (From is L@D or an L-*@D). The caller fills the membership
 * and envelope fields of F, size and admin_command. */
void rewrite_facts(const char *raw, size_t len, const struct list_cfg *l, struct post_facts *f,
		   char **from_addr);

/* The copy sent to members, shared by every recipient: CRLF line ends, NOT
 * dot-stuffed. Headers: the original ones in order minus Bcc, Return-Path,
 * Delivered-To, Errors-To, Precedence, X-Loop naming this list, and every
 * List-* field; Subject with the prefix exactly once (also when it came as
 * "Re: [P]" or RFC 2047-encoded, then re-encoded as UTF-8 when not ASCII);
 * then List-Id, List-Post, List-Help, List-Subscribe, List-Archive (when
 * the web is configured), Precedence: list, X-Loop. The Message-ID is
 * kept (one is added from MESSAGE_ID when the post had none). Caller frees. */
char *rewrite_post(const struct config *cfg, const struct list_cfg *l, const char *raw,
		   size_t len, const char *message_id, size_t *out_len);

/* Per-copy header lines, CRLF-terminated: List-Unsubscribe with the mailto
 * form and, when TOKEN is set and the web is configured, the one-click URL
 * BASE/L/unsubscribe/TOKEN, plus List-Unsubscribe-Post (RFC 8058) when BASE
 * is https (RFC 8058 allows one-click only over HTTPS). Batched
 * copies pass TOKEN = NULL. Caller frees. */
char *rewrite_recipient_head(const struct config *cfg, const struct list_cfg *l,
			     const char *token);

/* SUBJECT (a raw header value, possibly RFC 2047) with PREFIX exactly once
 * at its start: "[P] text", "[P] Re: text" for replies, whatever prefixes
 * and Re:/RE:/Aw: runs the sender's client left. RFC 2047 UTF-8 encoded
 * (folded to 78 columns) when not ASCII. Caller frees. */
char *rewrite_subject(const char *subject, const char *prefix);

/* A notice to the sender of RAW that list L did not take it: From
 * L-owner@D, To the sender, "Auto-Submitted: auto-replied", a text part
 * with REASON, and the original's header as text/rfc822-headers (never
 * the body: no backscatter amplification). A full RFC 5322 message with
 * Date, Message-ID, MIME-Version; CRLF; NOT dot-stuffed. Caller frees. */
char *rewrite_reject_notice(const struct config *cfg, const struct list_cfg *l, const char *raw,
			    size_t len, const char *to, const char *reason, size_t *out_len);

#endif
