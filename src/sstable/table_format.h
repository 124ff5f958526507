/*
 * table_format.h - the bytes of a table file (private to src/sstable).
 *
 * doc/table_format.md is the specification: the file layout, offset/size
 * tables, the grammar, the rules a reader enforces and a worked hex example.
 * This header only names its numbers so that the builder and the reader
 * cannot disagree.
 *
 * ---------------------------------------------------------------------------
 * DO NOT CHANGE any value below: tables written by earlier builds must stay
 * readable. A new layout needs a new SST_FORMAT_VERSION, a reader for both,
 * and an update of doc/table_format.md in the same change.
 * ---------------------------------------------------------------------------
 */
#ifndef STRATA_TABLE_FORMAT_H
#define STRATA_TABLE_FORMAT_H

#include <stdint.h>

/* File layout, in this order with no gaps:
 *   dictionary block                 (format version 3 only)
 *   data block 0 .. data block N-1   (each: contents | type | checksum)
 *   range-deletion block             (version 2, or 3 with range tombstones)
 *   filter block                     (absent when the footer's filter size is 0)
 *   index block
 *   properties block
 *   footer                           (SST_FOOTER_SIZE bytes) */

/* Footer: 72 bytes at the end of the file.
 *   off size field
 *     0    8 filter block offset (u64 LE); 0 when there is no filter
 *     8    8 filter block size (u64 LE), contents only; 0 = no filter
 *    16    8 index block offset (u64 LE)
 *    24    8 index block size (u64 LE)
 *    32    8 properties block offset (u64 LE)
 *    40    8 properties block size (u64 LE)
 *    48    4 format version (u32 LE): 1, 2 or 3
 *    52    4 versions 1 and 2: flags (u32 LE) = 0; version 3: the dictionary
 *            block's size (u32 LE), contents only, 1..SST_MAX_DICT_BYTES
 *    56    8 XXH3_64bits of bytes [0, 56) (u64 LE)
 *    64    8 magic "STRATAST" */
#define SST_MAGIC "STRATAST"
#define SST_MAGIC_LEN 8
#define SST_FORMAT_VERSION 1
/* Version 2: a table with range tombstones. Its properties are version 2 and
   a range-deletion block sits between the data blocks and the filter. */
#define SST_FORMAT_VERSION_RD 2
/* Version 3: a table whose data blocks were compressed with a zstd dictionary
   kept in the table. The dictionary block comes first, at offset 0 (type 0,
   contents: a zstd dictionary with its entropy tables); the footer's word at
   offset 52 is its size. Properties are version 1 or 2 (range tombstones). */
#define SST_FORMAT_VERSION_DICT 3
#define SST_MAX_DICT_BYTES ((uint32_t)1 << 20)
#define SST_FOOTER_SIZE 72
#define SST_FT_FILTER_OFF 0
#define SST_FT_FILTER_SIZE 8
#define SST_FT_INDEX_OFF 16
#define SST_FT_INDEX_SIZE 24
#define SST_FT_PROPS_OFF 32
#define SST_FT_PROPS_SIZE 40
#define SST_FT_VERSION 48
#define SST_FT_FLAGS 52
#define SST_FT_DICT_SIZE 52 /* version 3 */
#define SST_FT_CHECKSUM 56
#define SST_FT_MAGIC 64

/* Every block is stored as: contents (handle size bytes) | type (1 byte) |
 * XXH3_64bits(contents | type) (u64 LE). A block handle's size counts the
 * contents only; the 9 trailer bytes follow. */
#define SST_BLOCK_TRAILER 9
#define SST_TYPE_NONE 0 /* contents are the block itself */
#define SST_TYPE_ZSTD 1 /* contents: varint uncompressed size | one zstd frame */
#define SST_TYPE_ZSTD_DICT 2 /* as SST_TYPE_ZSTD, the frame made with the table's
                                dictionary (version 3 only) */
/* Data blocks only: as SST_TYPE_ZSTD and SST_TYPE_ZSTD_DICT, but the frame
   holds the block in heads-first order (sst_block.h): all entry heads, then
   all values, then the restart array. Added after versions 1-3 were first
   written; every table this build compresses uses them for its data blocks. */
#define SST_TYPE_ZSTD_KV 3
#define SST_TYPE_ZSTD_DICT_KV 4 /* version 3 only */

/* No block's (uncompressed) contents may exceed this; a reader rejects larger
 * claims before allocating. */
#define SST_MAX_BLOCK_LEN ((uint64_t)1 << 30)

/* Key/value block (data and index): entries, then the restart array (u32 LE
 * offsets of entries stored with shared = 0), then the restart count (u32 LE).
 * Entry: varint shared | varint non_shared | varint value_len |
 *        key bytes [non_shared] | value bytes [value_len].
 * A key is an internal key: user key | trailer (u64 LE, seq << 8 | kind). */
#define SST_IKEY_TRAILER 8
#define SST_RESTART_INTERVAL 16       /* data blocks */
#define SST_INDEX_RESTART_INTERVAL 16 /* index block; readers do not rely on it */

/* Separator trailer: the smallest internal key for a user key (used by index
 * entries whose user key was shortened). */
#define SST_SEPARATOR_TRAILER UINT64_MAX

/* Filter block contents: bit array (nbytes >= 8) | probes (u8, 1..30).
 * Bit j is bit (j & 7) of byte j >> 3. */
#define SST_BLOOM_MIN_BYTES 8
#define SST_BLOOM_MAX_PROBES 30

/* Properties block contents (version 1), in order: varint version,
 * varint entries, deletions, raw_key_bytes, raw_value_bytes, data_blocks,
 * data_bytes, min_seq, max_seq; varint smallest_len, smallest bytes,
 * u64 LE smallest_trailer; varint largest_len, largest bytes, u64 LE
 * largest_trailer. Nothing may follow. */
#define SST_PROPS_VERSION 1

/* Properties version 2 (format version 2, or 3 with range tombstones): version 1's fields, then
 * varint range_dels (>= 1), varint range-deletion block offset, varint its
 * size (contents only, as a block handle). Nothing may follow.
 *
 * Range-deletion block contents: varint count (= range_dels), then count
 * entries: varint seq | varint blen | begin bytes | varint elen | end bytes,
 * each with begin < end (bytewise), in no particular order. */
#define SST_PROPS_VERSION_RD 2

#endif
