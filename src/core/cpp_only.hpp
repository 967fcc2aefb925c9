// Included last by every pure C++ translation unit of src/core: fails the build if a
// PostgreSQL header was pulled in, so the core stays testable without a server.
#pragma once

#if defined(POSTGRES_H) || defined(C_H) || defined(POSTGRES_FE_H)
static_assert(false, "src/core must not include PostgreSQL headers (DESIGN.md section 6)");
#endif
