/* Test shim for wine < 9 only (never shipped): wine 8.0 has no
 * bcryptprimitives.dll, whose ProcessPrng the Go runtime (Go >= 1.22)
 * needs to start on Windows, so x0x.dll cannot load there. Built and put
 * into the throwaway wine prefix's system32 by scripts/build-matrix.sh for
 * the win32-x64 smoke test; it forwards to RtlGenRandom (advapi32's
 * SystemFunction036), the system's CSPRNG. Windows 10 and later ship the
 * real DLL. */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, n)) {
            return FALSE;
        }
        data += n;
        len -= n;
    }
    return TRUE;
}
