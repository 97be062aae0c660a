/* mpicheck.h: turning MPI return codes into onfh errors.
 *
 * onfh sets MPI_ERRORS_RETURN on its communicators so a failed call comes back to the caller
 * (who can say what it was doing) instead of aborting inside the library. Use as
 *   if ((rc = MPI_CALL(e, MPI_Bcast(buf, n, MPI_BYTE, 0, comm))))
 *       return rc;
 * The message names the call, file:line and MPI's own error string. */
#ifndef ONFH_MPICHECK_H
#define ONFH_MPICHECK_H

#include "lib/util/err.h"

int mpi_check(int mpi_rc, const char *call, const char *file, int line, Err *e);

#define MPI_CALL(e, call) mpi_check((call), #call, __FILE__, __LINE__, (e))

#endif
