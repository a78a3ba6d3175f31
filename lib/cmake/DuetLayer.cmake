# duet_layer(NAME SOURCES ... [DEPENDS layer...] [PRIVATE lib...]): one layer of duet as
#   duet_NAME         a static library (duet::NAME in this build; the tests and tools link it)
#   duet_NAME_shared  the same objects as libduet_NAME.so.MAJOR.MINOR (exported as duet::NAME
#                     by the installed CMake package)
# DEPENDS names lower layers (public: their headers are in this layer's); PRIVATE names
# third-party libraries the layer uses inside (users of the shared library never see them).
function(duet_layer name)
  cmake_parse_arguments(L "" "INCLUDE" "SOURCES;DEPENDS;PRIVATE" ${ARGN})
  if(NOT L_INCLUDE)
    set(L_INCLUDE ${CMAKE_CURRENT_SOURCE_DIR}/include)
  endif()
  add_library(duet_${name}_objects OBJECT ${L_SOURCES})
  set_target_properties(duet_${name}_objects PROPERTIES POSITION_INDEPENDENT_CODE ON)
  target_compile_options(duet_${name}_objects PRIVATE ${DUET_WARNINGS})
  target_include_directories(duet_${name}_objects PUBLIC $<BUILD_INTERFACE:${L_INCLUDE}>)
  set(static_deps "")
  set(shared_deps "")
  foreach(dep ${L_DEPENDS})
    list(APPEND static_deps duet_${dep})
    list(APPEND shared_deps duet_${dep}_shared)
  endforeach()
  target_link_libraries(duet_${name}_objects PUBLIC ${static_deps} PRIVATE ${L_PRIVATE})

  add_library(duet_${name} STATIC $<TARGET_OBJECTS:duet_${name}_objects>)
  add_library(duet::${name} ALIAS duet_${name})
  target_include_directories(duet_${name} PUBLIC $<BUILD_INTERFACE:${L_INCLUDE}> $<INSTALL_INTERFACE:include>)
  target_link_libraries(duet_${name} PUBLIC ${static_deps} PRIVATE ${L_PRIVATE})

  add_library(duet_${name}_shared SHARED $<TARGET_OBJECTS:duet_${name}_objects>)
  set_target_properties(duet_${name}_shared PROPERTIES
    OUTPUT_NAME duet_${name}
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR}
    EXPORT_NAME ${name})
  target_include_directories(duet_${name}_shared PUBLIC $<BUILD_INTERFACE:${L_INCLUDE}> $<INSTALL_INTERFACE:include>)
  target_link_libraries(duet_${name}_shared PUBLIC ${shared_deps} PRIVATE ${L_PRIVATE})

  install(TARGETS duet_${name}_shared EXPORT duetTargets
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev)
  install(TARGETS duet_${name} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)

  # pkg-config: duet-NAME.pc (Requires: the lower layers; Libs.private: what a static link needs)
  set(pc_requires "")
  foreach(dep ${L_DEPENDS})
    string(APPEND pc_requires " duet-${dep}")
  endforeach()
  set(pc_private "")
  foreach(lib ${L_PRIVATE})
    if(lib MATCHES "sodium")
      string(APPEND pc_private " -lsodium")
    elseif(lib MATCHES "OpenSSL")
      string(APPEND pc_private " -lcrypto")
    elseif(lib MATCHES "spdlog")
      string(APPEND pc_private " -lspdlog -lfmt")
    elseif(lib MATCHES "Threads")
      string(APPEND pc_private " -pthread")
    elseif(lib STREQUAL "dl" OR lib MATCHES "DL_LIBS")
      string(APPEND pc_private " -ldl")
    endif()
  endforeach()
  set(PC_NAME duet-${name})
  set(PC_LIB duet_${name})
  set(PC_REQUIRES ${pc_requires})
  set(PC_PRIVATE ${pc_private})
  configure_file(${PROJECT_SOURCE_DIR}/lib/cmake/duet-layer.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/duet-${name}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/duet-${name}.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endfunction()
