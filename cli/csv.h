/* csv: RFC 4180 records for members import/export. */
#ifndef DIALOGUE_CLI_CSV_H
#define DIALOGUE_CLI_CSV_H

#include <stddef.h>
#include <stdio.h>

#define CSV_MAX_FIELDS 16
/* A field longer than this is refused: nobody's name is a megabyte. */
#define CSV_MAX_FIELD 4096

struct csv_reader {
	const char *p, *end;
	long line; /* line number of the next byte, from 1 */
};

void csv_init(struct csv_reader *r, const char *data, size_t len);

/* Read one record into FIELDS (fresh strings, caller frees each) and
 * set *N. *LINE gets the line the record starts on. Returns 1 for a
 * record, 0 at the end of the data, -1 on malformed input with ERR set
 * and *LINE the line of the fault (nothing to free then). A UTF-8 byte
 * order mark at the start is skipped; CRLF, LF and CR all end a record
 * outside quotes. */
int csv_read(struct csv_reader *r, char **fields, size_t *n, long *line, char *err,
	     size_t errlen);

/* Write S as one field, quoted when it holds a comma, quote, CR, LF or
 * leading/trailing blanks. */
void csv_write_field(FILE *f, const char *s);

#endif
