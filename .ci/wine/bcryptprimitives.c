/*
 * A stand-in for Windows' bcryptprimitives.dll, for running pcfail.exe under Wine in CI only; it is
 * never shipped. Rust's standard library (and getrandom) take random bytes from ProcessPrng in
 * bcryptprimitives.dll, which Windows 10 and later have and Debian's Wine 8 does not: without it the
 * loader refuses to start the program. This DLL exports ProcessPrng and fills the buffer from
 * RtlGenRandom (advapi32's SystemFunction036), which Wine implements with the host's random source.
 */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    /* RtlGenRandom takes a 32-bit length; ProcessPrng's is pointer-sized. */
    while (length > 0) {
        ULONG chunk = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk)) {
            return FALSE;
        }
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
