/* no_dlclose.c — preloaded into the MPI tests of sanitizer builds
 * (tests/CMakeLists.mpi.txt): dlclose does nothing, so the Open MPI
 * plugins that MPI_Finalize unloads stay mapped and LeakSanitizer can name
 * them (tests/lsan-mpi.supp suppresses Open MPI's own allocations by
 * module; a leak in fepc or libfep still fails the test). */
int dlclose(void *handle);

int dlclose(void *handle)
{
    (void)handle;
    return 0;
}
