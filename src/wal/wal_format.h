/*
 * wal_format.h - the bytes of a write-ahead log file (private to src/wal).
 *
 * doc/wal_format.md is the specification: offset/size tables, the grammar, a
 * worked hex example and the recovery rules. This header only names its
 * numbers so that the writer and the reader cannot disagree.
 *
 * ---------------------------------------------------------------------------
 * DO NOT CHANGE any value below: logs written by earlier builds must stay
 * readable. A new layout needs a new WAL_FORMAT_VERSION, a reader for both,
 * and an update of doc/wal_format.md in the same change.
 * ---------------------------------------------------------------------------
 */
#ifndef STRATA_WAL_FORMAT_H
#define STRATA_WAL_FORMAT_H

/* File header: 32 bytes at offset 0.
 *   off size field
 *     0    8 magic "STRATAWL"
 *     8    4 format version (u32 LE) = WAL_FORMAT_VERSION
 *    12    4 flags (u32 LE) = 0
 *    16    8 log number (u64 LE), the NNNNNN of the file name
 *    24    8 XXH3_64bits of bytes [0, 24) (u64 LE) */
#define WAL_MAGIC "STRATAWL"
#define WAL_MAGIC_LEN 8
#define WAL_FORMAT_VERSION 1
#define WAL_FILE_HEADER_SIZE 32
#define WAL_FH_VERSION 8
#define WAL_FH_FLAGS 12
#define WAL_FH_NUMBER 16
#define WAL_FH_CHECKSUM 24

/* Record: a 24-byte header, then `length` payload bytes. Records follow each
 * other with no padding.
 *   off size field
 *     0    8 checksum (u64 LE) = XXH3_64bits_withSeed(record bytes [8, 24 + length),
 *            seed = log number)
 *     8    4 payload length (u32 LE), <= WAL_MAX_PAYLOAD (wal.h); 0 for a marker
 *    12    1 type: WAL_TYPE_PAYLOAD or WAL_TYPE_SYNC
 *    13    3 reserved, zero
 *    16    8 synced offset (u64 LE): file bytes known durable when the record was
 *            made; WAL_FILE_HEADER_SIZE <= synced offset <= the record's own offset
 *    24    n payload */
#define WAL_RECORD_HEADER_SIZE 24
#define WAL_REC_CHECKSUM 0
#define WAL_REC_LENGTH 8
#define WAL_REC_TYPE 12
#define WAL_REC_RESERVED 13
#define WAL_REC_RESERVED_LEN 3
#define WAL_REC_SYNCED 16
/* The checksum covers the header from this offset on, then the payload. */
#define WAL_REC_CHECKED_FROM 8

#define WAL_TYPE_PAYLOAD 1 /* one committed write group */
#define WAL_TYPE_SYNC 2    /* sync marker: no payload; synced offset = its own offset */

#endif
