/* h5deflate.c: zlib's compress2() on libdeflate, for HDF5's deflate filter (see h5deflate.h).
 *
 * compress2's contract (zlib.h): compress sourceLen bytes into dest, of *destLen bytes, as one
 * zlib stream at level 0..9 or Z_DEFAULT_COMPRESSION (6); on success *destLen is the stream's
 * length and the result Z_OK; Z_BUF_ERROR when it does not fit, Z_MEM_ERROR without memory,
 * Z_STREAM_ERROR for a bad level. HDF5 gives dest compressBound(n) bytes; a stream that does not
 * fit makes its (optional) filter leave that chunk uncompressed, which readers understand. */
#include "lib/h5/h5deflate.h"

#if ONFH_HAVE_LIBDEFLATE
#include <libdeflate.h>
#include <zlib.h>

/* Compressors by level, made when first needed and kept for the process: HDF5 filters one
 * chunk at a time, and onfh's ranks are processes, not threads. */
static struct libdeflate_compressor *compressors[10];

int compress2(Bytef *dest, uLongf *destLen, const Bytef *source, uLong sourceLen, int level)
{
    if (level == Z_DEFAULT_COMPRESSION)
        level = 6;
    if (level < 0 || level > 9)
        return Z_STREAM_ERROR;
    if (!compressors[level] && !(compressors[level] = libdeflate_alloc_compressor(level)))
        return Z_MEM_ERROR;
    size_t n = libdeflate_zlib_compress(compressors[level], source, sourceLen, dest, *destLen);
    if (n == 0)
        return Z_BUF_ERROR;
    *destLen = (uLongf)n;
    return Z_OK;
}

const char *h5_deflate_backend(void)
{
    return "libdeflate";
}

#else

const char *h5_deflate_backend(void)
{
    return "zlib";
}

#endif
