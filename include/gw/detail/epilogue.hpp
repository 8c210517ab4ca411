// Closes what the prelude opened.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
