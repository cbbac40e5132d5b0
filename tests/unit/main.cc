#define BOOST_TEST_MODULE connectable unit tests
#include <boost/test/unit_test.hpp>
