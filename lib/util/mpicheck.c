/* mpicheck.c: MPI error codes to Err messages (see mpicheck.h). */
#include "lib/util/mpicheck.h"

#include <mpi.h>

int mpi_check(int mpi_rc, const char *call, const char *file, int line, Err *e)
{
    if (mpi_rc == MPI_SUCCESS)
        return 0;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(mpi_rc, text, &len) != MPI_SUCCESS)
        len = 0;
    text[len] = '\0';
    return err_set(e, ERR_MPI, "%s:%d: %.200s failed: %s", file, line, call,
                   len ? text : "unknown MPI error");
}
