# Datasets and downloads: libarchive (.tar.gz), libpng and libjpeg(-turbo) (image folders), zlib
# (gzip integrity), libcurl (vtrain download). All private: nothing above sees them.
find_package(ZLIB REQUIRED)
pkg_check_modules(VT_ARCHIVE REQUIRED IMPORTED_TARGET libarchive)
pkg_check_modules(VT_PNG REQUIRED IMPORTED_TARGET libpng)
pkg_check_modules(VT_JPEG REQUIRED IMPORTED_TARGET libjpeg)
pkg_check_modules(VT_CURL REQUIRED IMPORTED_TARGET libcurl)
vt_add_module(vt_data ${CMAKE_CURRENT_LIST_DIR} DEPS vt_engine
              PRIVATE_DEPS PkgConfig::VT_ARCHIVE PkgConfig::VT_PNG PkgConfig::VT_JPEG PkgConfig::VT_CURL ZLIB::ZLIB)
