// The shim's terminate handler, in place of libstdc++'s.
//
// libstdc++'s default handler (__gnu_cxx::__verbose_terminate_handler) names the type of an
// uncaught exception through the C++ demangler: 37 KB of code that, linked statically,
// every shim would map for a message it should never have to print. Defined here, in the
// executable, it takes the place of the library's own, which is then not linked, nor the
// demangler with it; the shim's last words go to its log, in the log's format, with the
// exception's what(). Only the executable has this file: the tests keep the library's.
#include "common/log.h"

namespace __gnu_cxx {

void __verbose_terminate_handler() { connectable::log::lastWords(); }

}  // namespace __gnu_cxx
