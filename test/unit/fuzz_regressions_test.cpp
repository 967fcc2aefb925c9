// Replays the fuzz targets' saved inputs through the same property checks as the libFuzzer
// targets (test/fuzz/fuzz_properties.hpp), so ctest catches a regression without clang:
// test/fuzz/regressions/<target>/ (inputs that once failed) and test/fuzz/corpus/<target>/.
#include "fuzz_properties.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iterator>
#include <new>
#include <ostream>
#include <string>
#include <vector>

// ---- the largest single allocation while an input is checked --------------------------------
// libFuzzer runs the targets with -malloc_limit_mb; here a replacement of the global allocation
// functions measures the same thing, only while `metering` is set.

namespace {
thread_local bool metering = false;
thread_local size_t largest_allocation = 0;
}  // namespace

// GCC flags free() of memory from operator new; here both sides are ours and use malloc/free.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void *operator new(std::size_t n) {
    if (metering) largest_allocation = std::max(largest_allocation, n);
    if (void *p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void *operator new[](std::size_t n) { return ::operator new(n); }
void operator delete(void *p) noexcept { std::free(p); }
void operator delete[](void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
void operator delete[](void *p, std::size_t) noexcept { std::free(p); }

namespace sgivm::fuzz {
void PrintTo(const Target &t, std::ostream *os) { *os << t.name; }
}  // namespace sgivm::fuzz

namespace {

using sgivm::fuzz::Target;

std::vector<std::string> files_in(const std::string &dir) {
    std::vector<std::string> files;
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d))
            if (e->d_name[0] != '.') files.push_back(dir + "/" + e->d_name);
        closedir(d);
    }
    std::sort(files.begin(), files.end());
    return files;
}

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// An input of n bytes may need blocks proportional to n (a message of n one-byte values), never
// one sized by a count the input merely claims.
size_t allocation_bound(size_t n) { return 64 * 1024 + 64 * n; }

void replay(const Target &t, const std::string &dir, bool must_exist) {
    std::vector<std::string> files = files_in(dir);
    if (must_exist) {
        EXPECT_FALSE(files.empty()) << "no saved inputs in " << dir;
    }
    for (const std::string &f : files) {
        SCOPED_TRACE(f);
        std::string input = read_file(f);
        largest_allocation = 0;
        metering = true;
        try {
            t.check(input);
        } catch (const std::exception &e) {
            metering = false;
            ADD_FAILURE() << e.what();
        }
        metering = false;
        EXPECT_LE(largest_allocation, allocation_bound(input.size()))
            << "an input of " << input.size() << " bytes made a block of " << largest_allocation << " bytes";
    }
}

class FuzzInputs : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzInputs, RegressionsStayFixed) {
    replay(GetParam(), std::string(SGIVM_FUZZ_DIR) + "/regressions/" + GetParam().name, false);
}

TEST_P(FuzzInputs, CorpusHoldsTheProperties) {
    replay(GetParam(), std::string(SGIVM_FUZZ_DIR) + "/corpus/" + GetParam().name, true);
}

INSTANTIATE_TEST_SUITE_P(Target, FuzzInputs, ::testing::ValuesIn(sgivm::fuzz::targets()),
                         [](const ::testing::TestParamInfo<Target> &i) { return std::string(i.param.name); });

}  // namespace
