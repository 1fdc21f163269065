# Compiles designs/ticketing/web/* into sd::ticketing_web (see src/web_assets.hpp). Re-generated
# whenever a file changes; a new file is picked up at the next configure (CONFIGURE_DEPENDS).
file(GLOB SD_TICKETING_WEB_FILES CONFIGURE_DEPENDS
     ${CMAKE_CURRENT_SOURCE_DIR}/web/*.html ${CMAKE_CURRENT_SOURCE_DIR}/web/*.js
     ${CMAKE_CURRENT_SOURCE_DIR}/web/*.css ${CMAKE_CURRENT_SOURCE_DIR}/web/*.svg)
set(SD_TICKETING_WEB_CPP ${CMAKE_CURRENT_BINARY_DIR}/web_assets.cpp)
add_custom_command(
  OUTPUT ${SD_TICKETING_WEB_CPP}
  COMMAND ${CMAKE_COMMAND} -DOUT=${SD_TICKETING_WEB_CPP} "-DFILES=${SD_TICKETING_WEB_FILES}"
          -P ${CMAKE_CURRENT_SOURCE_DIR}/web/embed.cmake
  DEPENDS ${SD_TICKETING_WEB_FILES} ${CMAKE_CURRENT_SOURCE_DIR}/web/embed.cmake
  COMMENT "Embedding the ticketing web UI"
  VERBATIM)
add_library(sd_ticketing_web STATIC ${SD_TICKETING_WEB_CPP})
add_library(sd::ticketing_web ALIAS sd_ticketing_web)
target_include_directories(sd_ticketing_web PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/src)
