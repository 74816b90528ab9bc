// A route guide server, over shared memory: gRPC's route guide service with
// one RPC of each kind (unary, server streaming, client streaming and
// bidirectional streaming). Compared with the same server over TCP, only the
// address and the credentials in AddListeningPort differ; the service code is
// plain gRPC.
//
//   route_guide_server [address]    default: shm:///tmp/route_guide.sock
//
// The features are generated in code, no data file: one at every point of a
// 10 x 10 grid with 0.1 degree spacing, from (40.0, -75.0) to (40.9, -74.1),
// named "Feature <row>,<column>". route_guide_client relies on this layout.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "grpc_shm/grpc_shm.h"
#include "route_guide.grpc.pb.h"

namespace {

constexpr int kGridSize = 10;
constexpr int kOriginLatitude = 400000000;    // 40.0 degrees * 1e7
constexpr int kOriginLongitude = -750000000;  // -75.0 degrees * 1e7
constexpr int kSpacing = 1000000;             // 0.1 degree * 1e7

std::vector<routeguide::Feature> MakeFeatures() {
  std::vector<routeguide::Feature> features;
  for (int row = 0; row < kGridSize; ++row) {
    for (int col = 0; col < kGridSize; ++col) {
      routeguide::Feature f;
      f.set_name("Feature " + std::to_string(row) + "," + std::to_string(col));
      f.mutable_location()->set_latitude(kOriginLatitude + row * kSpacing);
      f.mutable_location()->set_longitude(kOriginLongitude + col * kSpacing);
      features.push_back(std::move(f));
    }
  }
  return features;
}

// Great-circle distance in metres (haversine), as in gRPC's route guide.
double Distance(const routeguide::Point& a, const routeguide::Point& b) {
  constexpr double kCoordFactor = 10000000.0;
  constexpr double kRadius = 6371000;  // earth radius in metres
  constexpr double kPi = 3.14159265358979323846;
  auto rad = [&](int32_t e7) { return e7 / kCoordFactor * kPi / 180; };
  double lat1 = rad(a.latitude()), lat2 = rad(b.latitude());
  double dlat = lat2 - lat1;
  double dlon = rad(b.longitude()) - rad(a.longitude());
  double h = std::sin(dlat / 2) * std::sin(dlat / 2) +
             std::cos(lat1) * std::cos(lat2) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return kRadius * 2 * std::atan2(std::sqrt(h), std::sqrt(1 - h));
}

bool SamePoint(const routeguide::Point& a, const routeguide::Point& b) {
  return a.latitude() == b.latitude() && a.longitude() == b.longitude();
}

class RouteGuideImpl final : public routeguide::RouteGuide::Service {
 public:
  RouteGuideImpl() : features_(MakeFeatures()) {}

  grpc::Status GetFeature(grpc::ServerContext* context, const routeguide::Point* point,
                          routeguide::Feature* feature) override {
    feature->set_name(FindName(*point));
    *feature->mutable_location() = *point;
    return grpc::Status::OK;
  }

  grpc::Status ListFeatures(grpc::ServerContext* context, const routeguide::Rectangle* rectangle,
                            grpc::ServerWriter<routeguide::Feature>* writer) override {
    const auto& lo = rectangle->lo();
    const auto& hi = rectangle->hi();
    int32_t left = std::min(lo.longitude(), hi.longitude());
    int32_t right = std::max(lo.longitude(), hi.longitude());
    int32_t bottom = std::min(lo.latitude(), hi.latitude());
    int32_t top = std::max(lo.latitude(), hi.latitude());
    for (const auto& f : features_) {
      const auto& p = f.location();
      if (p.longitude() >= left && p.longitude() <= right && p.latitude() >= bottom &&
          p.latitude() <= top) {
        if (!writer->Write(f)) break;  // the client went away
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status RecordRoute(grpc::ServerContext* context,
                           grpc::ServerReader<routeguide::Point>* reader,
                           routeguide::RouteSummary* summary) override {
    auto start = std::chrono::steady_clock::now();
    routeguide::Point point, previous;
    int point_count = 0, feature_count = 0;
    double distance = 0.0;
    while (reader->Read(&point)) {
      ++point_count;
      if (!FindName(point).empty()) ++feature_count;
      if (point_count > 1) distance += Distance(previous, point);
      previous = point;
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    summary->set_point_count(point_count);
    summary->set_feature_count(feature_count);
    summary->set_distance(static_cast<int32_t>(distance));
    summary->set_elapsed_time(
        static_cast<int32_t>(std::chrono::duration_cast<std::chrono::seconds>(elapsed).count()));
    return grpc::Status::OK;
  }

  // Answers each note with the notes sent earlier at the same point in this
  // chat (gRPC's example shares them between all chats; keeping them per
  // call makes the client's check repeatable against a long-running server).
  grpc::Status RouteChat(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<routeguide::RouteNote, routeguide::RouteNote>* stream) override {
    std::vector<routeguide::RouteNote> received;
    routeguide::RouteNote note;
    while (stream->Read(&note)) {
      for (const auto& n : received) {
        if (SamePoint(n.location(), note.location()) && !stream->Write(n)) {
          return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
        }
      }
      received.push_back(note);
    }
    return grpc::Status::OK;
  }

 private:
  std::string FindName(const routeguide::Point& point) const {
    for (const auto& f : features_) {
      if (SamePoint(f.location(), point)) return f.name();
    }
    return "";
  }

  const std::vector<routeguide::Feature> features_;
};

}  // namespace

int main(int argc, char** argv) {
  std::string address = argc > 1 ? argv[1] : "shm:///tmp/route_guide.sock";
  RouteGuideImpl service;
  grpc::ServerBuilder builder;
  // Over TCP this line reads:
  //   builder.AddListeningPort("0.0.0.0:50051", grpc::InsecureServerCredentials());
  builder.AddListeningPort(address, grpc_shm::ServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server(builder.BuildAndStart());
  if (!server) {
    std::cerr << "could not listen on " << address << std::endl;
    return 1;
  }
  std::cout << "Server listening on " << address << std::endl;
  server->Wait();
  return 0;
}
